"""Secrets in stored configurations are write-only: masked on every read, kept when sent back.

An assistant's provider sections (``SECTIONS``) may hold the organization's own provider keys
(``api_key``, bring your own key) and similar secrets (``SECRET_KEYS``, at any depth within a
section; a ``facts`` entry called "password" is not one). Every response that
shows a stored configuration passes it through ``masked``: a secret reads as ``****`` plus
its last four characters, enough to tell two keys apart. A client that reads an assistant,
changes something and sends it back sends the masked value; ``restore_masked`` puts the stored
secret back in its place. A masked value that matches no stored secret is a ``400`` (it is
never stored as if it were a key). Webhook payloads leave the configuration out altogether.

A stored secret goes only where it went when it was given: where a configuration keeps one
(sent back masked, or left out of a PATCH or an override that merges with the stored
configuration) while the endpoint of its section changed (its ``provider``, ``base_url`` or
``url``; for ``llm_config``, the assistant's ``provider`` too), the request is a ``422`` naming
the secret (``check_secrets_stay``): the client gives the key again in clear, so no one who may
edit an assistant can send its stored key to a host of their choosing.

An ``mcp`` tool's ``server.headers`` (``tools[i]``; ``Authorization``, ``X-Api-Key``...) are
secrets whatever their names: each value reads masked, is restored from the stored tool at the
same place (``tools[i]``, the same header name) when sent back masked, and is not sent to
another ``server.url`` unless given again in clear (the same 422).

URLs (``URL_KEYS``, anywhere in a configuration: a provider's ``base_url``, a tool's
``server.url``; and a webhook endpoint's URL) are refused with credentials (``user:pass@``)
when given; one stored before (or in the operator's file) reads with its credentials masked,
``https://****@host/path`` (``masked_url``). Sent back so, it is refused like any URL with
credentials: the client names the URL without them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from voicedock.domain.json import JsonObject, JsonValue
from voicedock.errors import Unprocessable, UnresolvableConfig

SECTIONS = ("stt_config", "tts_config", "llm_config")
SECRET_KEYS = frozenset({"api_key", "token", "secret", "password", "authorization"})
URL_KEYS = frozenset({"url", "base_url"})
# What names where a section's secret is sent: its provider and its endpoint's URL.
ENDPOINT_KEYS = ("provider", "base_url", "url")
MASK = "****"
TOOLS = "tools"
MCP_TOOL = "mcp"  # a tool whose server's headers are secrets (calls/tools/config.py)
_SHOWN = 4  # characters of the end a masked secret keeps
_SHORT = 12  # a secret shorter than this shows nothing of itself


def mask(value: str) -> str:
    return MASK + (value[-_SHOWN:] if len(value) >= _SHORT else "")


def is_masked(value: object) -> bool:
    return isinstance(value, str) and value.startswith(MASK)


def _is_secret(key: object) -> bool:
    return isinstance(key, str) and key.lower() in SECRET_KEYS


def masked_url(url: str) -> str:
    """``url`` with the credentials of its authority masked: ``https://****@host/path``."""
    scheme, separator, rest = url.partition("://")
    end = next((i for i, ch in enumerate(rest) if ch in "/?#"), len(rest))
    authority = rest[:end]
    if not separator or "@" not in authority:
        return url
    return f"{scheme}://{MASK}@{authority.rpartition('@')[2]}{rest[end:]}"


def masked(config: Mapping[str, JsonValue]) -> JsonObject:
    """A copy of a configuration (an assistant's, a tool's) with the secrets of its provider
    sections and the credentials of its URLs masked."""
    out = {k: _masked_item(k, v, secrets=k in SECTIONS) for k, v in config.items()}
    tools = out.get(TOOLS)
    if isinstance(tools, list):
        out[TOOLS] = [_with_headers(tool, _masked_headers) for tool in tools]
    return out


def mcp_headers(tool: JsonValue) -> Mapping[str, JsonValue] | None:
    """The headers of an ``mcp`` tool's server (None: not an mcp tool, or none)."""
    if not isinstance(tool, dict) or tool.get("type") != MCP_TOOL:
        return None
    server = tool.get("server")
    headers = server.get("headers") if isinstance(server, dict) else None
    return headers if isinstance(headers, dict) else None


def _mcp_url(tool: JsonValue) -> JsonValue:
    server = tool.get("server") if isinstance(tool, dict) else None
    return server.get("url") if isinstance(server, dict) else None


def _with_headers(
    tool: JsonValue, change: Callable[[Mapping[str, JsonValue]], JsonObject]
) -> JsonValue:
    """``tool`` with its mcp server's headers changed (others as they are)."""
    headers = mcp_headers(tool)
    if headers is None or not isinstance(tool, dict):
        return tool
    server = tool["server"]
    assert isinstance(server, dict)
    return {**tool, "server": {**server, "headers": change(headers)}}


def _masked_headers(headers: Mapping[str, JsonValue]) -> JsonObject:
    return {k: mask(v) if isinstance(v, str) and v else v for k, v in headers.items()}


def _masked(value: JsonValue, *, secrets: bool) -> JsonValue:
    if isinstance(value, dict):
        return {k: _masked_item(k, v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(item, secrets=secrets) for item in value]
    return value


def _masked_item(key: object, value: JsonValue, secrets: bool) -> JsonValue:
    if isinstance(value, str) and value:
        if secrets and _is_secret(key):
            return mask(value)
        if key in URL_KEYS:
            return masked_url(value)
    return _masked(value, secrets=secrets)


def restore_masked(
    config: Mapping[str, JsonValue], stored: Mapping[str, JsonValue] | None
) -> JsonObject:
    """``config`` with each masked secret of its provider sections replaced by the secret
    stored at the same place (``stored``: the saved configuration it updates, None when there
    is none); 400 naming the key when no stored secret reads so."""
    out = dict(config)
    for key in SECTIONS:
        section = config.get(key)
        if isinstance(section, dict):
            before = stored.get(key) if stored is not None else None
            out[key] = _restored(section, before if isinstance(before, dict) else None, key)
    tools = config.get(TOOLS)
    if isinstance(tools, list):
        was = stored.get(TOOLS) if stored is not None else None
        out[TOOLS] = [
            _with_headers(tool, partial(_restored_headers, _stored_tool(was, i), f"tools[{i}]"))
            for i, tool in enumerate(tools)
        ]
    return out


def _stored_tool(tools: JsonValue | None, index: int) -> JsonValue:
    return tools[index] if isinstance(tools, list) and index < len(tools) else None


def _restored_headers(
    stored_tool: JsonValue, where: str, headers: Mapping[str, JsonValue]
) -> JsonObject:
    before = mcp_headers(stored_tool) or {}
    out: JsonObject = {}
    for name, value in headers.items():
        if is_masked(value):
            kept = before.get(name)
            if not (isinstance(kept, str) and kept and mask(kept) == value):
                raise UnresolvableConfig(
                    f"{where}.server.headers.{name} is a masked value that matches no stored "
                    "header: send the header itself, or the masked value read back to keep it"
                )
            value = kept
        out[name] = value
    return out


def _restored(
    value: Mapping[str, JsonValue], stored: Mapping[str, JsonValue] | None, where: str
) -> JsonObject:
    out: JsonObject = {}
    for key, item in value.items():
        name = f"{where}.{key}"
        before = stored.get(key) if stored is not None else None
        if _is_secret(key) and is_masked(item):
            if not (isinstance(before, str) and before and mask(before) == item):
                raise UnresolvableConfig(
                    f"{name} is a masked value that matches no stored secret: "
                    "send the secret itself, or the masked value read back to keep it"
                )
            out[key] = before
        elif isinstance(item, dict):
            out[key] = _restored(item, before if isinstance(before, dict) else None, name)
        else:
            out[key] = item
    return out


Endpoint = tuple[JsonValue, ...]


def check_secrets_stay(
    given: Mapping[str, JsonValue],
    config: Mapping[str, JsonValue],
    stored: Mapping[str, JsonValue] | None,
) -> None:
    """422 naming the first secret of ``config`` (a configuration as it will be saved or used)
    that is the one ``stored`` holds at the same place, not given in clear in ``given`` (the
    request's own configuration: masked, or left out), while the endpoint it goes to differs
    from the stored one's (``ENDPOINT_KEYS`` of its object, else of the object around it; for
    ``llm_config`` the configuration's ``provider`` too)."""
    if stored is None:
        return
    for key in SECTIONS:
        section, before = config.get(key), stored.get(key)
        if isinstance(section, dict) and isinstance(before, dict):
            top: Endpoint = (config.get("provider"),) if key == "llm_config" else ()
            was: Endpoint = (stored.get("provider"),) if key == "llm_config" else ()
            _check_stay(given.get(key), section, before, (top, was), key)
    tools, stored_tools, given_tools = config.get(TOOLS), stored.get(TOOLS), given.get(TOOLS)
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        _check_headers_stay(
            _stored_tool(given_tools, i), tool, _stored_tool(stored_tools, i), f"tools[{i}]"
        )


def _check_headers_stay(given: JsonValue, tool: JsonValue, stored: JsonValue, where: str) -> None:
    """422 when an mcp tool keeps a stored header (masked or left out) for another URL."""
    headers, before = mcp_headers(tool), mcp_headers(stored)
    if headers is None or before is None or _mcp_url(tool) == _mcp_url(stored):
        return
    sent = mcp_headers(given) or {}
    for name, value in headers.items():
        clear = sent.get(name)
        if value != before.get(name) or (isinstance(clear, str) and not is_masked(clear)):
            continue  # a header of its own, or given again in clear
        raise Unprocessable(
            f"{where}.server.headers.{name} must be given again in clear: a stored header is "
            f"not sent to another URL ({where}.server.url changed), whether sent back masked "
            "or left out"
        )


def _endpoint(value: Mapping[str, JsonValue], around: Endpoint) -> Endpoint:
    if not any(k in value for k in ENDPOINT_KEYS):
        return around
    return (*around, *(value.get(k) for k in ENDPOINT_KEYS))


def _check_stay(
    given: JsonValue | None,
    value: Mapping[str, JsonValue],
    stored: Mapping[str, JsonValue],
    around: tuple[Endpoint, Endpoint],
    where: str,
) -> None:
    now, was = _endpoint(value, around[0]), _endpoint(stored, around[1])
    sent = given if isinstance(given, dict) else {}
    for key, item in value.items():
        name, before = f"{where}.{key}", stored.get(key)
        if isinstance(item, dict) and isinstance(before, dict):
            _check_stay(sent.get(key), item, before, (now, was), name)
            continue
        if not (_is_secret(key) and isinstance(item, str) and item and item == before):
            continue
        clear = sent.get(key)
        if isinstance(clear, str) and clear and not is_masked(clear):
            continue  # given again in clear
        if now != was:
            raise Unprocessable(
                f"{name} must be given again in clear: the stored key is not sent to another "
                f"provider or URL ({where}'s provider, base_url or url changed), whether sent "
                "back masked or left out"
            )
