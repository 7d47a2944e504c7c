"""Organizations' provider keys at rest: sealed with AES-GCM under the operator's key."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from fakes.world import new_operator_key
from voicedock.config import load_settings
from voicedock.domain.key_box import KeyBox, KeyBoxError, operator_key
from voicedock.errors import ConfigError

pytestmark = pytest.mark.unit

SECRET = "sk-live-organization-0123456789abcd"


def box() -> KeyBox:
    return KeyBox(operator_key(new_operator_key()))


def test_a_sealed_key_opens_with_the_same_operator_key_and_context() -> None:
    b = box()
    sealed = b.seal(SECRET, "org-a:key-1")
    assert b.open(sealed, "org-a:key-1") == SECRET
    assert b.seal(SECRET, "org-a:key-1") != sealed  # a fresh nonce each time


def test_the_sealed_text_holds_nothing_of_the_key() -> None:
    sealed = box().seal(SECRET, "ctx")
    assert SECRET not in sealed
    raw = base64.b64decode(sealed.removeprefix("v1:"))
    assert SECRET.encode() not in raw
    assert SECRET[-8:].encode() not in raw


def test_another_operator_key_fails_clearly() -> None:
    sealed = box().seal(SECRET, "ctx")
    with pytest.raises(KeyBoxError, match="does not open with the operator's BYOK key"):
        box().open(sealed, "ctx")


def test_a_key_moved_to_another_organization_does_not_open() -> None:
    b = box()
    sealed = b.seal(SECRET, "org-a:key-1")
    with pytest.raises(KeyBoxError):
        b.open(sealed, "org-b:key-1")


def test_a_tampered_key_does_not_open() -> None:
    b = box()
    sealed = b.seal(SECRET, "ctx")
    raw = bytearray(base64.b64decode(sealed.removeprefix("v1:")))
    raw[-1] ^= 1
    with pytest.raises(KeyBoxError):
        b.open("v1:" + base64.b64encode(bytes(raw)).decode(), "ctx")


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_an_operator_key_that_is_not_32_bytes_is_refused(text: str) -> None:
    with pytest.raises(KeyBoxError):
        operator_key(text)


def test_the_operator_key_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    key = new_operator_key()
    settings = load_settings(environ={"VOICEDOCK_BYOK__KEY": key})
    assert settings.byok.operator_key() == operator_key(key)
    path = tmp_path / "byok.key"
    path.write_text(key + "\n")
    settings = load_settings(environ={"VOICEDOCK_BYOK__KEY_FILE": str(path)})
    assert settings.byok.operator_key() == operator_key(key)
    with pytest.raises(ConfigError, match=r"byok\.key"):
        load_settings(environ={"VOICEDOCK_BYOK__KEY": "short"})
    with pytest.raises(ConfigError, match=r"byok\.mode"):
        load_settings(environ={"VOICEDOCK_BYOK__MODE": "sometimes"})
