"""Errors raised by the media layer, each a ``voicedock.errors.MediaError``.

    MediaError (voicedock.errors)
     ├── MediaProtocolError      a message we would send (or got) breaks the chan_websocket rules
     ├── MediaStartTimeout       Asterisk never sent MEDIA_START
     ├── MediaSessionClosed      the session was closed by us (aclose() or HANGUP)
     └── MediaConnectionLost     the peer closed the socket or the connection broke

"Closed by us" and "broken by the peer" are different errors on purpose: the call engine ends
the call normally in the first case and reports a media failure in the second.
"""

from __future__ import annotations

from voicedock.errors import MediaError


class MediaProtocolError(MediaError):
    """A command or message violates the chan_websocket protocol (size, charset, format)."""


class MediaStartTimeout(MediaError):
    """The websocket opened but no MEDIA_START arrived in time."""


class MediaSessionClosed(MediaError):
    """The session was closed on our side; using it afterwards is a programming error."""


class MediaConnectionLost(MediaError):
    """Asterisk closed the media websocket, or the connection broke."""

    def __init__(self, message: str, *, close_code: int | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code
