"""A voice's pronunciation dictionary (``pipeline/providers/pronunciation.py``) and what each
provider is sent: whole words, case-insensitive, the longest first, once; a phoneme rule as
Piper's ``[[ ]]`` or ElevenLabs' SSML tag where the voice takes it, its alias elsewhere; the
local voices' cache key follows the rules. Keyterms: Deepgram's query parameter per model,
OpenAI's prompt after the assistant's own."""

from __future__ import annotations

import pytest

from voicedock.domain.assistant_config import SttConfig, TtsConfig
from voicedock.domain.vocabulary import Pronunciation, merged_keyterms, merged_pronunciations
from voicedock.pipeline.providers.deepgram import keyterm_options
from voicedock.pipeline.providers.elevenlabs import ElevenLabsTts
from voicedock.pipeline.providers.openai_audio import OpenAiStt, OpenAiTts
from voicedock.pipeline.providers.piper_tts import PiperTts
from voicedock.pipeline.providers.pronunciation import PhonemeStyle, Pronouncer

pytestmark = pytest.mark.unit

RULES = [
    Pronunciation(grapheme="Nguyen", alias="Win"),
    Pronunciation(grapheme="SQL", alias="sequel"),
    Pronunciation(grapheme="Acme Dental", alias="Ack-me Dental"),
    Pronunciation(grapheme="tomato", phoneme="təˈmɑːtoʊ", alphabet="ipa"),
    Pronunciation(grapheme="Acme", alias="Acne"),  # the longer phrase is matched first
]
TEXT = "Dr. NGUYEN of acme dental likes SQL, not mySQL; a tomato, Acme."


@pytest.mark.parametrize(
    ("style", "said"),
    [
        ("alias", "Dr. Win of Ack-me Dental likes sequel, not mySQL; a tomato, Acne."),
        ("piper", "Dr. Win of Ack-me Dental likes sequel, not mySQL; a [[ təˈmɑːtoʊ ]], Acne."),
        (
            "ssml",
            'Dr. Win of Ack-me Dental likes sequel, not mySQL; a <phoneme alphabet="ipa" '
            'ph="təˈmɑːtoʊ">tomato</phoneme>, Acne.',
        ),
    ],
)
def test_each_style_says_the_rules_its_way(style: PhonemeStyle, said: str) -> None:
    assert Pronouncer(RULES, style).spoken(TEXT) == said


def test_a_replacement_is_not_matched_again_and_the_first_rule_wins() -> None:
    rules = [
        Pronunciation(grapheme="Win", alias="Nguyen"),
        Pronunciation(grapheme="Nguyen", alias="Win"),
        Pronunciation(grapheme="nguyen", alias="Nwen"),
    ]
    assert Pronouncer(rules, "alias").spoken("Nguyen and Win") == "Win and Nguyen"


def test_no_rules_leave_the_text_and_the_identity_alone() -> None:
    assert Pronouncer(None, "alias").spoken(TEXT) == TEXT
    assert Pronouncer([], "piper").identity == ""


def test_the_local_voices_cache_key_follows_the_rules() -> None:
    plain = PiperTts(model_path="/voices/joe.onnx")
    ruled = PiperTts(model_path="/voices/joe.onnx", pronunciations=RULES)
    other = PiperTts(model_path="/voices/joe.onnx", pronunciations=RULES[:1])
    assert len({plain.voice_identity, ruled.voice_identity, other.voice_identity}) == 3


def test_elevenlabs_sends_phoneme_tags_only_to_the_models_that_read_them() -> None:
    config = TtsConfig(api_key="xi-key", voice_id="v1", pronunciations=RULES[3:4])
    default = ElevenLabsTts(config)  # eleven_flash_v2_5: no phoneme tags, no alias: as written
    assert default.request_body("a tomato").text == "a tomato"
    v2 = ElevenLabsTts(
        TtsConfig(
            api_key="xi-key", voice_id="v1", model_id="eleven_flash_v2", pronunciations=RULES[3:4]
        )
    )
    assert v2.request_body("a tomato").text == (
        'a <phoneme alphabet="ipa" ph="təˈmɑːtoʊ">tomato</phoneme>'
    )


def test_openai_voice_is_sent_the_alias() -> None:
    tts = OpenAiTts(TtsConfig(api_key="sk-key", pronunciations=RULES))
    assert tts.request_body("Ask for Nguyen.").input == "Ask for Win."


def test_deepgram_nova_3_takes_keyterms_earlier_models_single_keywords() -> None:
    terms = ["Acme Dental", "SKU-204", "acme"]
    assert keyterm_options("nova-3", terms) == [
        ("keyterm", "Acme Dental"),
        ("keyterm", "SKU-204"),
        ("keyterm", "acme"),
    ]
    assert keyterm_options("nova-2", terms) == [
        ("keywords", "Acme"),
        ("keywords", "Dental"),
        ("keywords", "SKU"),
        ("keywords", "204"),
        ("keywords", "acme"),
    ]


def test_openai_stt_prompt_carries_the_keyterms_after_its_own() -> None:
    stt = OpenAiStt(SttConfig(api_key="sk-key", prompt="A dental clinic.", keyterms=["Nguyen"]))
    form = stt._form(b"\0\0" * 160, 8000)
    fields = {f[0]["name"]: f[2] for f in form._fields}
    assert fields["prompt"] == "A dental clinic. Nguyen."


def test_merging_keeps_the_assistants_first_and_its_rule_for_a_word() -> None:
    assert merged_keyterms(["Nguyen"], ["nguyen", "Acme"]) == ["Nguyen", "Acme"]
    own = [Pronunciation(grapheme="nguyen", alias="Nwen")]
    merged = merged_pronunciations(own, RULES[:2])
    assert [(r.grapheme, r.alias) for r in merged] == [("nguyen", "Nwen"), ("SQL", "sequel")]
