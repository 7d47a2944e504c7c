"""What an Asterisk server is, as its ARI says: its version and the modules it has loaded.

``read_server_info`` asks ``GET /asterisk/info`` (``system.version``, e.g. ``22.6.0`` or Debian's
``16.28.0~dfsg-0+deb11u4``) and ``GET /asterisk/modules`` (every module with its status; ARI
has it from Asterisk 13.5 on). What a server offers decides how a call's audio travels
(``media/choice``) and what ``voicedock doctor`` says of it. A module list that cannot be read
is ``None`` (unknown), never empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicedock.errors import PbxError
from voicedock.pbx.asterisk.ari.rest import AriHttpError

if TYPE_CHECKING:
    from voicedock.pbx.asterisk.ari.client import AriClient

__all__ = ["AsteriskServerInfo", "parse_release", "read_server_info"]

_RELEASE = re.compile(r"(?<![0-9])([0-9]{1,3})\.([0-9]{1,3})(?:\.([0-9]{1,3}))?")

Release = tuple[int, int, int]


def parse_release(version: str) -> Release | None:
    """``(major, minor, patch)`` of a version string (``certified/18.9-cert5`` is 18.9.0);
    ``None`` when it names none (a ``GIT-master-…`` build)."""
    match = _RELEASE.search(version)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


@dataclass(frozen=True, slots=True)
class AsteriskServerInfo:
    version: str
    """As Asterisk says it (``""``: not told)."""
    modules: frozenset[str] | None
    """Modules running, without ``.so``; ``None``: the list could not be read."""

    @property
    def release(self) -> Release | None:
        return parse_release(self.version)

    def has(self, module: str) -> bool | None:
        """Whether ``module`` runs; ``None`` when the modules are unknown."""
        return None if self.modules is None else module in self.modules


async def read_server_info(ari: AriClient) -> AsteriskServerInfo:
    """The server behind ``ari``; ``PbxError`` when ARI does not answer at all."""
    info = await ari.request("GET", "/asterisk/info", params={"only": "system"})
    system = info.get("system") if isinstance(info, dict) else None
    version = system.get("version") if isinstance(system, dict) else None
    try:
        listed = await ari.request("GET", "/asterisk/modules")
    except AriHttpError:
        listed = None  # an ARI user or build without the module resource
    except PbxError:
        raise
    modules: frozenset[str] | None = None
    if isinstance(listed, list):
        modules = frozenset(
            str(entry["name"]).removesuffix(".so")
            for entry in listed
            if isinstance(entry, dict)
            and isinstance(entry.get("name"), str)
            and str(entry.get("status", "Running")).lower() == "running"
        )
    return AsteriskServerInfo(version if isinstance(version, str) else "", modules)
