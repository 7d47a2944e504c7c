"""How a provider reads its configuration section: the conversions ``int()``/``float()`` made
when the section was untyped, the same defaults, a value of the wrong JSON kind refused."""

from __future__ import annotations

import pytest

from voicedock.domain.json import JsonValue
from voicedock.pipeline.providers._http import Timeouts
from voicedock.pipeline.providers.base import ProviderConfigError
from voicedock.pipeline.providers.deepgram import DeepgramStt
from voicedock.pipeline.providers.rule_based import RuleBasedPolicy
from voicedock.pipeline.providers.section import (
    integer,
    number,
    optional_integer,
    optional_number,
    optional_text,
)

pytestmark = pytest.mark.unit


def test_values_read_as_int_and_float_read_them() -> None:
    section = {"rate": "16000", "scale": 2, "flag": True, "ratio": 1.5}
    assert integer(section, "rate", 8000) == 16000
    assert integer(section, "ratio", 0) == 1
    assert integer(section, "flag", 0) == 1
    assert number(section, "scale", 0.0) == 2.0
    assert integer(section, "absent", 8000) == 8000
    assert number(section, "absent", 5.0) == 5.0


def test_null_and_absent_optional_values() -> None:
    section = {"endpointing_ms": None, "speed": "1.25", "language": None}
    assert optional_integer(section, "endpointing_ms", 300) is None
    assert optional_integer(section, "absent", 300) == 300
    assert optional_number(section, "speed") == 1.25
    assert optional_number(section, "absent") is None
    assert optional_text(section, "language", "en") is None
    assert optional_text(section, "absent", "en") == "en"


@pytest.mark.parametrize("value", [None, [1], {"a": 1}])
def test_a_value_of_another_json_kind_is_a_type_error(value: JsonValue) -> None:
    with pytest.raises(TypeError, match="read_timeout_s must be a number"):
        Timeouts.from_config({"read_timeout_s": value})


def test_a_number_that_is_not_one_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="soon"):
        DeepgramStt.from_config({"api_key": "k", "endpointing_ms": "soon"})


def test_rule_based_facts_must_map_strings_to_strings() -> None:
    with pytest.raises(ProviderConfigError, match=r"llm\.facts must map keyword strings"):
        RuleBasedPolicy.from_config({"facts": {"hours": 9}})
    with pytest.raises(ProviderConfigError, match=r"llm\.greeting must be a non-empty string"):
        RuleBasedPolicy.from_config({"greeting": " "})
