"""A speech provider's URL as it may be named: scheme, host, port and a path, nothing else.

A provider's client appends its own endpoint to the URL it is given (``/chat/completions``,
``/audio/speech``, ``/listen``…), so whatever follows the path would steer the request it
sends: a query or a fragment (``http://127.0.0.1:11434/api/pull#`` turns a chat request into a
model download), dot segments or percent-escapes in the path. Credentials (``user:pass@``)
would be sent as a ``Basic`` header and shown wherever the URL is. So a provider URL is
``http``/``https``/``ws``/``wss``, a host name or IP literal, an optional port and a path of
plain segments (letters, digits, ``.``, ``_``, ``~``, ``-``; none starting with a dot).

Which hosts and paths the operator lets an organization name is the egress guard's decision
(``voicedock.egress.providers``); this module only says what a provider URL looks like.
"""

from __future__ import annotations

import re

# A host name or a bracketed IPv6 literal (IPv4 literals are host names to this pattern).
NAME_PATTERN = r"[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?"
IPV6_PATTERN = r"\[[0-9A-Fa-f:.]+\]"
HOST_PATTERN = rf"({NAME_PATTERN}|{IPV6_PATTERN})"
PORT_PATTERN = r"(:[0-9]{1,5})?"
# Plain segments: no dot segment, no escape, no character a client reads as more than a path.
PATH_PATTERN = r"(/[A-Za-z0-9_~\-][A-Za-z0-9._~\-]*)*/?"
URL_PATTERN = rf"^(https?|wss?)://{HOST_PATTERN}{PORT_PATTERN}{PATH_PATTERN}$"

_URL = re.compile(URL_PATTERN)
_AUTHORITY = re.compile(HOST_PATTERN + PORT_PATTERN)
_SCHEMES = ("http://", "https://", "ws://", "wss://")
_AUTHORITY_END = re.compile(r"[/?#]")


def extras_problem(url: str) -> str | None:
    """What ``url`` carries beyond scheme, host, port and path (credentials, a query, a
    fragment), or ``None``. What a provider's client refuses in any base URL it is given."""
    rest = url.partition("://")[2]
    authority = _AUTHORITY_END.split(rest, maxsplit=1)[0]
    if "@" in authority:
        return "credentials in the URL are not allowed"
    if "?" in rest:
        return "a query is not allowed (scheme, host, port and path only)"
    if "#" in rest:
        return "a fragment is not allowed (scheme, host, port and path only)"
    return None


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a provider URL (``URL_PATTERN``), or ``None`` when it is one."""
    if not url.startswith(_SCHEMES):
        return "only http(s) and ws(s) URLs are allowed"
    problem = extras_problem(url)
    if problem is not None:
        return problem
    if _URL.fullmatch(url) is not None:
        return None
    authority = _AUTHORITY_END.split(url.partition("://")[2], maxsplit=1)[0]
    if _AUTHORITY.fullmatch(authority) is None:
        return "malformed host or port"
    return (
        "the path may hold only letters, digits and . _ ~ - between slashes "
        "(no dot segments, no escapes)"
    )


def url_path(url: str) -> str:
    """The path of a provider URL (``url_problem`` is None), without its trailing slash:
    ``https://api.openai.com/v1/`` → ``/v1``; ``https://api.elevenlabs.io`` → ``""``."""
    rest = url.partition("://")[2]
    slash = rest.find("/")
    return "" if slash < 0 else rest[slash:].rstrip("/")
