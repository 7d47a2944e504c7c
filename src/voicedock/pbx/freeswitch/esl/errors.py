"""Errors of the FreeSWITCH Event Socket client.

The tree:

    PbxError
    ├── EslConnectionLost     — the socket broke; pending commands fail with it (never re-sent)
    │   └── EslDisconnected   — FreeSWITCH sent text/disconnect-notice
    ├── EslNotConnected       — a command was issued while (re)connecting; nothing was sent
    ├── EslAuthError          — wrong password or ACL rejection
    ├── EslCommandError       — ``-ERR`` reply to a command / api call / background job
    ├── EslCommandTimeout     — no reply in time (the command may still have run)
    ├── EslProtocolError      — bytes that are not ESL (from ``freeswitch.esl.wire``)
    └── EslClosed             — you closed the client (different from the peer breaking it)
    ConfigError
    └── EslDefaultPassword    — refusing the well-known default password ``ClueCon``
"""

from __future__ import annotations

from voicedock.errors import ConfigError, PbxError, PbxUnavailable


class EslConnectionLost(PbxError):
    """The ESL socket broke while this command or job was outstanding."""


class EslDisconnected(EslConnectionLost):
    """FreeSWITCH announced the end of the socket (``text/disconnect-notice``)."""


class EslNotConnected(PbxUnavailable):
    """No authenticated ESL connection right now; the command was not sent."""


class EslAuthError(PbxError):
    """FreeSWITCH refused the password (or the inbound ACL refused this client)."""


class EslCommandError(PbxError):
    """FreeSWITCH answered ``-ERR ...``; ``reply`` holds its text."""

    def __init__(self, command: str, reply: str) -> None:
        super().__init__(f"{command}: {reply.strip()}")
        self.command = command
        self.reply = reply.strip()


class EslCommandTimeout(PbxError):
    """No reply in time; the command may still run (do not re-send a side effect)."""


class EslClosed(PbxError):
    """The client was closed by its owner."""


class EslDefaultPassword(ConfigError):
    def __init__(self) -> None:
        super().__init__("freeswitch.password", "the default ESL password 'ClueCon' is refused")
