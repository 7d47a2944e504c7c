import pytest

from voicedock.pbx.legs import CallRegistry

pytestmark = pytest.mark.unit


def test_each_transition_is_reported_once_and_never_backwards():
    calls = CallRegistry()
    calls.add("c1", "c1", "outbound")
    assert calls.mark_ringing("c1") is True
    assert calls.mark_ringing("c1") is False
    assert calls.mark_answered("c1") is True
    assert calls.mark_answered("c1") is False
    assert calls.mark_ended("c1") is True
    assert calls.mark_ended("c1") is False
    assert calls.mark_answered("c1") is False
    assert calls.live() == []


def test_no_ringing_after_answer_and_unknown_calls_are_ignored():
    calls = CallRegistry()
    calls.add("c1", "c1", "outbound")
    calls.mark_answered("c1")
    assert calls.mark_ringing("c1") is False
    assert calls.mark_ended("nope") is False


def test_media_legs_map_back_and_are_owned_until_transfer():
    calls = CallRegistry()
    legs = calls.add("c1", "chan-1", "inbound")
    calls.attach_channel("c1", "c1-media")
    calls.attach_bridge("c1", "c1-bridge")
    assert calls.by_channel("c1-media") is legs
    assert calls.by_channel("chan-1") is legs
    assert legs.owned_channels() == ["chan-1", "c1-media"]
    legs.transferred = True
    assert legs.owned_channels() == ["c1-media"]
    calls.detach_channel("c1-media")
    assert calls.by_channel("c1-media") is None


def test_forget_drops_every_mapping():
    calls = CallRegistry()
    calls.add("c1", "chan-1", "inbound")
    calls.attach_channel("c1", "m1")
    calls.forget("c1")
    calls.forget("c1")
    assert calls.get("c1") is None
    assert calls.by_channel("chan-1") is None
    assert calls.by_channel("m1") is None
    assert len(calls) == 0
