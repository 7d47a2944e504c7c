import pytest

from voicedock.domain.json import json_object

pytestmark = pytest.mark.unit


def test_a_json_object_is_a_dict_with_string_keys() -> None:
    assert json_object({"a": [1, None]}) == {"a": [1, None]}
    assert json_object({1: "a"}) is None
    assert json_object(["a"]) is None
    assert json_object(None) is None
