"""The connections a media server took that have not shown their leg's secret yet (a call's
token, a leg's UUID): strangers.

Anyone who can reach a media port may connect, so a stranger must cost little: only
``max_unauthenticated`` of them at once on the server, one more refused at once. Asterisk's
media acceptor (client mode, ``pbx/asterisk/media/acceptor.py``) and its AudioSocket listener
(``pbx/asterisk/media/audiosocket/server.py``) count theirs here, and ``refused``, every
connection they turned away (for this cap or for what it sent).
"""

from __future__ import annotations


class Strangers:
    def __init__(self, max_unauthenticated: int) -> None:
        self.max_unauthenticated = max_unauthenticated
        self.unauthenticated = 0  # connections that have not shown their secret yet
        self.refused = 0

    def admit_stranger(self) -> bool:
        """One more stranger; False (and counted refused) when ``max_unauthenticated`` are
        here already."""
        if self.unauthenticated >= self.max_unauthenticated:
            self.refused += 1
            return False
        self.unauthenticated += 1
        return True

    def stranger_known(self) -> None:
        """A stranger is one no more: it showed its secret, or it is gone."""
        self.unauthenticated -= 1
