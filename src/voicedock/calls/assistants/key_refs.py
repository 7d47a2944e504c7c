"""Assistants' references to their organization's provider keys (``api_key_ref``).

A provider section (``stt_config``, ``tts_config``, ``llm_config``, ``llm_config.say_voice``)
may name one of the organization's stored keys (``/provider-keys``) instead of carrying an
``api_key``. Saving an assistant checks the references (``check_key_refs``: the key exists,
is for that provider, and the operator's ``[byok] mode`` allows it); a call opens the named
keys when its providers are built (``with_provider_keys``), so the key itself is only ever in
memory: never in the assistant, the call's snapshot or a log line.

``[byok] mode``: ``allowed`` (the default); ``off`` — a reference is a 403 when saved and fails
the call; ``required`` — a section naming a cloud provider must reference a key (400
``Provider key required`` when saved: the node's policy refuses it), and a call whose cloud
section has no key of the organization fails rather than use the operator's ``[speech]`` key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from voicedock.config import ByokSettings
from voicedock.domain.key_box import KeyBox, KeyBoxError
from voicedock.domain.provider_keys import API_KEY_REF, cloud_providers
from voicedock.errors import BadRequest, Forbidden, StoreError, Unprocessable
from voicedock.pipeline.providers.base import ProviderConfigError, ProviderUnavailableError
from voicedock.store.base import Store

SECTIONS = ("stt_config", "tts_config", "llm_config")
_SAY_VOICE = "say_voice"
# A key stored for one provider also serves these (the same account).
_SAME_ACCOUNT = {"xai_realtime": "xai", "openai-compatible": "openai"}


def _sections(config: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key in SECTIONS:
        section = config.get(key)
        if isinstance(section, Mapping):
            yield key, section
            inner = section.get(_SAY_VOICE) if key == "llm_config" else None
            if isinstance(inner, Mapping):
                yield f"{key}.{_SAY_VOICE}", inner


def _provider(section: Mapping[str, Any], config: Mapping[str, Any], where: str) -> str:
    name = section.get("provider")
    if name is None and where == "llm_config":  # a speech-to-speech assistant names it above
        name = config.get("provider")
    return str(name or "")


def fits(key_provider: str, section_provider: str) -> bool:
    return key_provider in (section_provider, _SAME_ACCOUNT.get(section_provider))


def key_box(byok: ByokSettings) -> KeyBox | None:
    """The operator's key box (None: no key configured). Settings are checked at load."""
    key = byok.operator_key()
    return None if key is None else KeyBox(key)


def sealing_context(organization_id: str, key_id: str) -> str:
    """What a sealed key is bound to: copied to another row or organization, it does not open."""
    return f"provider-key:{organization_id}:{key_id}"


async def check_key_refs(
    store: Store, organization_id: str, config: Mapping[str, Any], byok: ByokSettings
) -> None:
    """403 when the operator forbids references; 422 for a reference to no key of the
    organization (or a key for another provider); 400 for, with ``required``, a cloud provider
    section without one."""
    for where, section in _sections(config):
        name = section.get(API_KEY_REF)
        provider = _provider(section, config, where)
        if name is None:
            if byok.mode == "required" and provider in cloud_providers():
                raise BadRequest(
                    f"{where}.{API_KEY_REF} is required: the operator requires the "
                    f"organization's own key for {provider} (see /provider-keys)",
                    error="Provider key required",
                )
            continue
        if byok.mode == "off":
            raise Forbidden(
                f"{where}.{API_KEY_REF}: the operator does not allow organizations' own "
                "provider keys",
                error="Provider keys disabled",
            )
        key = await store.get_provider_key(organization_id, name=str(name))
        if key is None:
            raise Unprocessable(f"{where}.{API_KEY_REF}: no provider key named {name!r}")
        if provider and not fits(key.provider, provider):
            raise Unprocessable(
                f"{where}.{API_KEY_REF}: the key {name!r} is for {key.provider}, not {provider}"
            )


def references(config: Mapping[str, Any], name: str) -> bool:
    """Whether ``config`` references the provider key ``name``."""
    return any(section.get(API_KEY_REF) == name for _, section in _sections(config))


async def with_provider_keys(
    store: Store, organization_id: str, config: Mapping[str, Any], byok: ByokSettings
) -> Mapping[str, Any]:
    """``config`` with each reference replaced by the key it names, opened (a copy: the
    given configuration is not changed). ``ProviderConfigError`` when a key cannot be used."""
    if byok.mode != "required" and not any(
        API_KEY_REF in section for _, section in _sections(config)
    ):
        return config
    out = dict(config)
    for where, section in list(_sections(config)):
        name = section.get(API_KEY_REF)
        provider = _provider(section, config, where)
        opened = {k: v for k, v in section.items() if k != API_KEY_REF}
        if name is not None:
            opened["api_key"] = await _open(store, organization_id, str(name), byok, where)
        elif (
            byok.mode == "required" and provider in cloud_providers() and not opened.get("api_key")
        ):
            raise ProviderConfigError(
                f"{where}: the operator requires the organization's own {provider} key"
            )
        if "." in where:  # say_voice, inside llm_config
            outer, inner = where.split(".", 1)
            out[outer] = {**out[outer], inner: opened}
        else:
            out[where] = opened  # its say_voice, if any, comes next
    return out


async def _open(
    store: Store, organization_id: str, name: str, byok: ByokSettings, where: str
) -> str:
    if byok.mode == "off":
        raise ProviderConfigError(f"{where}: the operator does not allow provider keys")
    try:
        key = await store.get_provider_key(organization_id, name=name)
    except StoreError as exc:  # the call cannot have its key now: it fails as unprovided
        raise ProviderUnavailableError(f"{where}: provider key not readable: {exc}") from None
    if key is None:
        raise ProviderConfigError(f"{where}: no provider key named {name!r}")
    box = key_box(byok)
    if box is None:
        raise ProviderConfigError("no [byok] key is configured to open provider keys")
    try:
        return box.open(key.sealed, sealing_context(organization_id, key.id))
    except KeyBoxError as exc:
        raise ProviderConfigError(str(exc)) from None
