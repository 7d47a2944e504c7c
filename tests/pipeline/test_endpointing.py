from __future__ import annotations

import pytest

from voicedock.pipeline.frames import (
    EndCall,
    Frame,
    Interruption,
    SilencePrompt,
    UserSpeechStarted,
    UserSpeechStopped,
)
from voicedock.pipeline.hearing.endpointing import (
    MAX_DURATION,
    SILENCE_TIMEOUT,
    Endpointer,
    EndpointingConfig,
)

pytestmark = pytest.mark.unit

CFG = EndpointingConfig(
    frame_ms=20,
    min_speech_ms=100,
    speech_gap_ms=40,
    end_silence_ms=400,
    barge_in_speech_ms=200,
    silence_timeout_ms=5_000,
    max_duration_ms=60_000,
)


def run(ep: Endpointer, pattern: str, audible: bool = False) -> list[tuple[int, Frame]]:
    """Feed a pattern of 'S' (speech) and '.' (silence) frames; collect (time, event)."""
    out: list[tuple[int, Frame]] = []
    for ch in pattern:
        for event in ep.process(ch == "S", assistant_audible=audible):
            out.append((ep.now_ms, event))
    return out


def test_turn_starts_after_min_speech_and_ends_after_silence_window() -> None:
    ep = Endpointer(CFG)
    events = run(ep, "." * 5 + "S" * 20 + "." * 25)
    assert events[0] == (200, UserSpeechStarted(at_ms=100))  # 5th speech frame = 100 ms
    stopped = events[1][1]
    assert isinstance(stopped, UserSpeechStopped)
    assert (stopped.started_at_ms, stopped.ended_at_ms) == (100, 500)
    assert stopped.decided_at_ms == 500 + 400
    assert len(events) == 2


def test_short_blip_is_not_a_turn() -> None:
    ep = Endpointer(CFG)
    assert run(ep, "SSS" + "." * 40) == []
    assert not ep.user_maybe_speaking


def test_short_gaps_inside_onset_do_not_reset_count() -> None:
    ep = Endpointer(CFG)
    events = run(ep, "SS.SS.S")  # 5 speech frames with 20 ms gaps
    assert [type(e) for _, e in events] == [UserSpeechStarted]


def test_long_gap_in_onset_resets() -> None:
    ep = Endpointer(CFG)
    assert run(ep, "SSS...SSS") == []  # 60 ms gap > 40 ms allowed


def test_pause_shorter_than_window_keeps_turn_open() -> None:
    ep = Endpointer(CFG)
    events = run(ep, "S" * 10 + "." * 15 + "S" * 10 + "." * 20)
    kinds = [type(e) for _, e in events]
    assert kinds == [UserSpeechStarted, UserSpeechStopped]


def test_barge_in_needs_longer_speech_and_emits_interruption() -> None:
    ep = Endpointer(CFG)
    assert run(ep, "S" * 6 + "." * 5, audible=True) == []  # 120 ms: echo/backchannel
    events = run(ep, "S" * 10, audible=True)
    assert [type(e) for _, e in events] == [UserSpeechStarted, Interruption]
    assert events[1][0] == ep.now_ms


def test_silence_timeout_counts_only_while_assistant_quiet() -> None:
    ep = Endpointer(CFG)
    frames = 5_000 // 20
    assert run(ep, "." * (frames - 1)) == []
    # assistant talks for a while: resets the idle clock
    assert run(ep, "." * 100, audible=True) == []
    assert run(ep, "." * (frames - 1)) == []
    events = run(ep, ".")
    assert events == [(ep.now_ms, EndCall(SILENCE_TIMEOUT))]
    assert run(ep, "S" * 50) == []  # finished: no more decisions


def test_user_speech_resets_silence_timeout() -> None:
    ep = Endpointer(CFG)
    run(ep, "." * 200 + "S" * 20 + "." * 200)
    assert not any(isinstance(e, EndCall) for _, e in run(ep, "." * 20))


def test_silence_prompt_once_per_silence_of_the_caller() -> None:
    ep = Endpointer(EndpointingConfig(silence_prompt_ms=1_000, silence_timeout_ms=3_000))
    assert run(ep, "." * 49) == []
    assert run(ep, ".") == [(1_000, SilencePrompt(1_000))]
    assert run(ep, "." * 25, audible=True) == []  # the prompt is spoken
    assert run(ep, "." * 100) == []  # not asked again while the caller stays silent
    assert run(ep, "S" * 10 + "." * 40) != []  # the caller answers: a turn
    events = run(ep, "." * 60)
    assert [type(e) for _, e in events] == [SilencePrompt]  # a new silence: asked again
    (_, ended), *_ = run(ep, "." * 150)
    assert ended == EndCall(SILENCE_TIMEOUT)


def test_a_transfer_under_way_holds_the_silence_limits_until_the_assistant_speaks() -> None:
    """The caller is with the PBX (ringing a target, on hold): no prompt, no timeout, however
    long; the assistant saying the transfer failed lets them go, counted from its words."""
    ep = Endpointer(EndpointingConfig(silence_prompt_ms=1_000, silence_timeout_ms=3_000))
    assert run(ep, "." * 10, audible=True) == []  # the announcement's last frames
    ep.hold_silence()
    assert run(ep, "." * 3, audible=True) == []  # its tail does not let the hold go
    assert ep.silence_held
    assert run(ep, "." * 1_000) == []  # 20 s of nothing: neither asked nor hung up
    assert run(ep, "." * 25, audible=True) == []  # "the transfer did not work"
    assert not ep.silence_held
    assert [e for _, e in run(ep, "." * 50)] == [SilencePrompt(21_760)]
    (_, ended), *_ = run(ep, "." * 100)
    assert ended == EndCall(SILENCE_TIMEOUT)


def test_a_caller_who_speaks_during_a_transfer_lets_the_silence_limits_go() -> None:
    ep = Endpointer(CFG)
    ep.hold_silence()
    assert run(ep, "." * 500) == []
    run(ep, "S" * 10 + "." * 30)  # a turn of the caller's: they are on the line
    assert not ep.silence_held
    (_, ended), *_ = run(ep, "." * 250)
    assert ended == EndCall(SILENCE_TIMEOUT)


def test_max_duration_holds_during_a_transfer() -> None:
    ep = Endpointer(EndpointingConfig(max_duration_ms=1_000, silence_timeout_ms=None))
    ep.hold_silence()
    assert run(ep, "." * 60)[-1] == (1_000, EndCall(MAX_DURATION))


def test_max_duration_even_while_speaking() -> None:
    cfg = EndpointingConfig(max_duration_ms=1_000, silence_timeout_ms=None)
    ep = Endpointer(cfg)
    events = run(ep, "S" * 60)
    assert events[-1] == (1_000, EndCall(MAX_DURATION))


def test_deterministic() -> None:
    pattern = ("S" * 7 + "." * 3) * 30 + "." * 400
    assert run(Endpointer(CFG), pattern) == run(Endpointer(CFG), pattern)


@pytest.mark.parametrize("field", ["frame_ms", "min_speech_ms", "end_silence_ms"])
def test_config_rejects_non_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        EndpointingConfig(**{field: 0})
