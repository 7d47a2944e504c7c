"""The Model Context Protocol's revisions voicedock speaks: as a server (``voicedock mcp``,
``mcp_server/``) and as a client (an assistant's tools from MCP servers, ``calls/tools/``).
Both speak the initialize handshake of these revisions, oldest first; the stateless revision
(2026-07-28, ``server/discover``) is not spoken: its clients fall back to the handshake."""

from __future__ import annotations

from typing import Final

MCP_VERSIONS: Final = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
