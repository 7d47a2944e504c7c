"""The lab dialplan offers exactly the remote parties and failures the tests rely on."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicedock_lab.config import find_project_root

pytestmark = pytest.mark.unit

PROJECT = find_project_root(Path(__file__))


def extensions(text: str, context: str) -> dict[str, str]:
    """Extension -> its priority-1 application line, for one context (all its sections)."""
    found: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        header = re.match(r"^\[([^\]]+)\]", line)
        if header:
            current = header.group(1)
            continue
        entry = re.match(r"^exten => ([^,]+),1,(.*)$", line)
        if entry and current == context:
            found[entry.group(1)] = entry.group(2)
    return found


def lab_text() -> str:
    return (PROJECT / "dialplan/lab/extensions.conf").read_text()


def test_callee_numbers_exist_and_404_does_not() -> None:
    callee = extensions(lab_text(), "lab-callee")
    for number in (
        "+31612345678",
        "+31612345670",
        "+31612345671",
        "+31612345672",
        "+31612345692",
        "+31612345695",
        "+31612345661",
        "+31612345696",
        "+31612345697",
        "+31612345698",
        "+31612345699",
        "+31610000200",
        "+31610000486",
        "+31610000480",
        "+31610000503",
        "+31610000403",
        "sales",
        "support",
        "busyagent",
    ):
        assert number in callee, number
    assert "+31610000404" not in callee
    assert callee["+31610000486"] == "Busy(5)"
    assert callee["+31610000503"] == "Congestion(5)"
    assert callee["+31610000403"] == "Hangup(21)"
    assert callee["busyagent"] == "Busy(5)"


def test_card_party_keys_each_digit_as_an_event_and_as_its_tone() -> None:
    """The secure keypad entry's party: a lone in-band 9, then 16 digits and #, each an
    RFC 4733 event (SendDTMF) and its tone in the audio (PlayTones)."""
    text = lab_text()
    party = text[text.index("exten => +31612345697,1,") :].split("\n\n", 1)[0]
    assert "Set(CARD=4929386172530418)" in party
    assert party.index("PlayTones(${T9})") < party.index("While(")
    assert party.index("SendDTMF(${KEY},50)") < party.index("PlayTones(${T${KEY}})")
    assert "SendDTMF(#,50)" in party


def test_answers_together_party_waits_for_the_signal_then_listens() -> None:
    """bench/greeting_latency.py's party: rings until LAB_ANSWER is "go", then listens."""
    text = lab_text()
    party = text[text.index("exten => +31612345692,1,") :].split("\n\n", 1)[0]
    assert party.index('"${GLOBAL(LAB_ANSWER)}" = "go"') < party.index("Answer()")
    assert "WaitForNoise(100,1,60)" in party
    assert "together-${UNIQUEID}.txt" in party


def test_soak_parties_talk_until_hung_up_or_their_time_without_recording() -> None:
    """bench/soak.py's parties: a sentence every ~4 s, no MixMonitor (hundreds of calls)."""
    text = lab_text()
    callee = extensions(text, "lab-callee")
    assert callee["+31612345693"] == "Set(TIMEOUT(absolute)=600)"
    assert "LAB_SOAK_MIN" in callee["+31612345694"]
    talk = text[text.index("[lab-soak-talk]") :].split("\n\n", 1)[0]
    assert "Playback(${LAB_SOUNDS}/utterance-appointment)" in talk
    assert "Goto(s,1)" in talk
    caller = text[text.index("[lab-soak-caller]") :].split("\n\n", 1)[0]
    assert "${LAB_SOAK_S}" in caller
    for section in (talk, caller):
        assert "MixMonitor" not in section
    for number in ("+31612345693", "+31612345694"):
        party = text[text.index(f"exten => {number},1,") :].split("\n\n", 1)[0]
        assert "MixMonitor" not in party
        assert "Goto(lab-soak-talk,s,1)" in party


def test_production_contexts_route_into_stasis() -> None:
    text = (PROJECT / "dialplan/asterisk/extensions_voicedock.conf").read_text()
    inbound = extensions(text, "voicedock-inbound")
    assert inbound["_+X."] == "NoOp(voicedock inbound)"
    assert "Gosub(voicedock-node,s,1(inbound,${EXTEN},${GOSUB_RETVAL}))" in text
    # Each live node's application in turn (the nodes publish them), the base one last.
    assert "Set(LOCAL(apps)=${GLOBAL(VOICEDOCK_APPS)})" in text
    assert "Stasis(${app},${ARG1},${ARG2},${ARG3})" in text
    assert "Stasis(${APP_NAME},${ARG1},${ARG2},${ARG3})" in text
    assert "Stasis(${VOICEDOCK_APP},outbound,${VOICEDOCK_CALL_ID})" in text
    transfers = extensions(text, "voicedock-transfers")
    assert transfers["sales"].startswith("Dial(PJSIP/sales@")
    assert "_+X." in transfers


def test_lab_includes_production_dialplan_and_adds_busy_transfer_target() -> None:
    text = lab_text()
    assert "#include extensions_voicedock.conf" in text
    assert "busyagent" in extensions(text, "voicedock-transfers")
