"""``[speech.barge_in]`` and an assistant's ``barge_in_on_words``: checked at start-up, and
what each call's dialogue judges the caller's speech over the assistant by."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.calls.live.config import conversation_config, with_barge_in_settings
from voicedock.config import ConfigError, load_settings
from voicedock.domain.assistant_config import config_of

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("on_words = 'sometimes'\n", "speech.barge_in.on_words"),
        ("min_voiced_ms = 5000\n", "speech.barge_in.min_voiced_ms"),
        ("backchannels = { English = ['yeah'] }\n", "speech.barge_in.backchannels"),
        ("backchannels = { en = [''] }\n", "speech.barge_in.backchannels"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_key(tmp_path: Path, toml: str, key: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[speech.barge_in]\n" + toml)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(path, environ={})


def test_the_operators_default_and_lists_reach_a_call_by_its_language(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[speech.barge_in]\non_words = true\nmin_voiced_ms = 250\n"
        "backchannels = { fr = ['oui', \"d'accord\"] }\n"
    )
    base = with_barge_in_settings(None, load_settings(path, environ={}).speech.barge_in)
    french = conversation_config(
        config_of({"stt_config": {"provider": "whisper", "language": "fr-FR"}}), 8000, base=base
    ).barge_in
    assert (french.on_words, french.min_voiced_ms) == (True, 250)
    assert not french.stands("Oui, d'accord.", 600)
    assert french.stands("Yeah.", 600)  # a French call's list is French
    german = conversation_config(
        config_of({"stt_config": {"provider": "whisper", "language": "de"}}), 8000, base=base
    ).barge_in
    assert not german.stands("Ja, genau.", 600)  # the built-in German list stays
    unknown = conversation_config(config_of({}), 8000, base=base).barge_in
    assert not unknown.stands("Mm-hmm, oui.", 600)  # no language: every language's


def test_an_assistant_turns_it_on_or_off_over_the_operators_default() -> None:
    base = with_barge_in_settings(None, load_settings(None, environ={}).speech.barge_in)
    assert not conversation_config(config_of({}), 8000, base=base).barge_in.on_words
    on = config_of({"barge_in_on_words": True})
    assert conversation_config(on, 8000, base=base).barge_in.on_words
