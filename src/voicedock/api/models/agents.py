"""``/agents``: the seeds' name for assistants, a deprecated alias of ``/assistants`` (the same
bodies and statuses, the same list key ``assistants``; api/routes/assistants.py ``AGENTS``).
Each operation is marked ``deprecated``, as the ``agent_*`` fields of ``POST /calls/outbound``
are, and its answers carry ``Deprecation``, ``Warning: 299`` and ``Link`` headers."""

from __future__ import annotations

from voicedock.api.models.assistants import PATHS as ASSISTANT_PATHS
from voicedock.api.models.operations import Schema, deprecated_alias

PATHS: dict[str, Schema] = {
    "/agents": deprecated_alias(ASSISTANT_PATHS["/assistants"], "/assistants"),
    "/agents/{id}": deprecated_alias(ASSISTANT_PATHS["/assistants/{id}"], "/assistants/{id}"),
}
MODELS = ()  # the assistants' (models/assistants.py)
