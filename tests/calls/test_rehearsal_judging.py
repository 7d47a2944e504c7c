"""A scenario's expectations judged from what its test call left: each verdict's reason, the
scenario's outcome and the reason naming its first failed expectation."""

from __future__ import annotations

import time

import pytest

from voicedock.calls.rehearsal.judging import judged, percentile_95, words
from voicedock.calls.rehearsal.test_calls import Observed, ToolUse
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.domain.rehearsal import (
    AnalysisEquals,
    Ended,
    HeardTurn,
    Latency,
    Outcome,
    Said,
    SayStep,
    Scenario,
    ToolCalled,
    Transferred,
    WouldTransfer,
)
from voicedock.domain.tenant_regex import TenantRegex, tenant_regex_refusal

pytestmark = pytest.mark.unit


def _observed(**kwargs: object) -> Observed:
    call = Call(
        id="call-_unknown_abc", organization_id="org", direction=Direction.INBOUND,
        status=CallStatus.ENDED, caller_phone=None, assistant_phone=None,
        end_reason="customer-ended-call", transferred_to="sales",
        analysis_result={"structured_data": {"booked": True}, "summary": "Booked."},
    )  # fmt: skip
    heard = [HeardTurn(role="assistant", text="We are open Monday to Friday from 9 to 5.", at_ms=1)]
    return Observed(call_id=call.id, heard=heard, call=call, **kwargs)  # type: ignore[arg-type]


def _scenario(*expectations: object) -> Scenario:
    return Scenario(name="s", steps=[SayStep(text="Hi")], expectations=list(expectations))  # type: ignore[arg-type]


def test_every_kind_of_expectation_holds_on_what_the_call_left() -> None:
    observed = _observed(
        latencies_ms=[400, 700, 900],
        tools=[ToolUse("lookup", {"day": "monday", "extra": 1})],
    )
    result = judged(
        _scenario(
            Said(contains="monday to friday from nine to five"),
            Said(regex=r"open\s+monday"),
            ToolCalled(name="lookup", arguments={"day": "monday"}),
            Transferred(destination="sales"),
            Ended(end_reason="customer-ended-call"),
            AnalysisEquals(field="booked", equals=True),
            Latency(p95_ms=900),
        ),
        observed,
    )
    assert [v.passed for v in result.expectations] == [True] * 7, result
    assert (result.outcome, result.reason, result.latency_p95_ms) == (Outcome.PASSED, None, 900)


def test_a_transferred_expectation_holds_on_the_transfers_a_test_call_asked_for() -> None:
    """A test call is never transferred (nothing is dialled): what it asked for is judged."""
    asked = [WouldTransfer(destination="+31201234567", mode="blind", at_ms=4200)]
    observed = _observed(would_transfer=asked)
    assert observed.call is not None
    observed.call.transferred_to = None
    result = judged(
        _scenario(Transferred(destination="+31201234567"), Transferred(destination="sales")),
        observed,
    )
    assert [v.passed for v in result.expectations] == [True, False]
    assert result.expectations[1].reason == "would transfer to +31201234567, not sales"
    assert result.would_transfer == asked


def test_the_first_failed_expectation_names_the_scenario_s_reason() -> None:
    result = judged(
        _scenario(
            Ended(end_reason="customer-ended-call"),
            Said(contains="we are closed on sundays"),
            ToolCalled(name="lookup"),
        ),
        _observed(),
    )
    assert result.outcome is Outcome.FAILED
    assert result.reason is not None
    assert result.reason.startswith('expectations[1] (said): "we are closed on sundays" not heard')
    assert [v.passed for v in result.expectations] == [True, False, False]
    assert result.expectations[2].reason == "lookup was not called (tools called: none)"


def test_a_call_that_could_not_be_made_is_an_error_not_judged() -> None:
    result = judged(_scenario(Said(contains="x")), Observed(error="the test call was not answered"))
    assert (result.outcome, result.reason) == (Outcome.ERROR, "the test call was not answered")
    assert result.expectations[0].reason == "not judged"


def test_words_and_percentiles() -> None:
    assert words("Nine to FIVE, please!") == "9 to 5 please"
    assert percentile_95([]) is None
    assert percentile_95(list(range(1, 101))) == 95


@pytest.mark.parametrize(
    ("pattern", "accepted"),
    [
        ("understood", True),
        (r"open\s+monday", True),
        (r"\d{3,}", True),
        ("(a+)+$", True),  # exponential for a backtracking engine; linear on RE2
        (".*a.*b.*c", True),
        (r"(\w+)\1", False),  # a back-reference: no linear-time engine has it
        ("(?=a)", False),  # a look-ahead: the same
        ("(", False),  # not a regular expression
    ],
)
def test_a_said_regex_is_one_a_linear_time_engine_runs(pattern: str, accepted: bool) -> None:
    assert (tenant_regex_refusal(pattern) is None) is accepted


def test_a_pattern_that_backtracks_exponentially_is_matched_at_once() -> None:
    text = "a" * 20_000 + "!"
    started = time.perf_counter()
    assert not TenantRegex("^(a+)+$").search(text)  # Python's re: longer than the universe
    assert time.perf_counter() - started < 1.0
    assert TenantRegex("MONDAY at nine").search("for monday at nine")  # case-insensitive


def test_a_recorded_test_call_s_result_links_its_recording() -> None:
    observed = _observed()
    assert judged(_scenario(), observed).recording_url is None
    assert observed.call is not None
    observed.call.recording_path = "org/call-_unknown_abc.wav"
    assert judged(_scenario(), observed).recording_url == "/calls/call-_unknown_abc/recording"
