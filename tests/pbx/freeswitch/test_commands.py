"""Originate / uuid_* command builders: every injection class is refused or neutralised."""

from __future__ import annotations

import pytest

from voicedock.pbx.freeswitch.commands import (
    UnsafeCommandValue,
    build_audio_stream_start,
    build_audio_stream_stop,
    build_originate,
    build_queued_playback,
    build_uuid_break,
    build_uuid_bridge,
    build_uuid_broadcast,
    build_uuid_kill,
    build_uuid_transfer,
    require_destination,
)
from voicedock.pbx.freeswitch.esl.wire import encode_sendmsg

pytestmark = pytest.mark.unit

UUID = "0b9f3c52-5d6e-4b8a-9c1d-2e3f4a5b6c7d"
UUID2 = "1c0a4d63-6e7f-4c9b-8d2e-3f4a5b6c7d8e"

INJECTIONS = [
    "",
    " ",
    "+15551234567 &bridge(sofia/gateway/evil/+900)",
    "+15551234567,origination_caller_id_number=+1900",
    "+15551234567|sofia/gateway/evil/+1900",
    "+15551234567}[x=1]",
    "{absolute_codec_string=PCMU}",
    "<x=1>+15551234567",
    "${system(rm -rf /)}",
    "$${hold_music}",
    "+1555123${x}",
    "+15551234567\n\napi system id",
    "+15551234567\r\n",
    "+15551234567\x00",
    "'+15551234567'",
    "+15551234567 XML default",
    "+1555١٢٣٤٥٦٧",  # Arabic-Indic digits
    "+１５５５１２３４５６７",  # fullwidth digits
    "+0123456789",
    "+123456",
    "+1234567890123456",
    "15551234567",
    "+15551234567/../../x",
    "^^:a=1",
    "\\,",
]


def originate(**overrides: object) -> str:
    args: dict[str, object] = {
        "call_uuid": UUID,
        "destination": "+15551234567",
        "caller_id_number": "+15557654321",
        "gateway": "carrier_1",
    }
    args.update(overrides)
    return build_originate(**args)  # type: ignore[arg-type]


def test_originate_shape() -> None:
    assert originate() == (
        "originate {origination_uuid=" + UUID + ",origination_caller_id_number=+15557654321,"
        "originate_timeout=30,send_silence_when_idle=-1}"
        "sofia/gateway/carrier_1/+15551234567 &park()"
    )


@pytest.mark.parametrize("bad", INJECTIONS)
def test_destination_injections_refused(bad: str) -> None:
    with pytest.raises(UnsafeCommandValue):
        originate(destination=bad)


@pytest.mark.parametrize("bad", INJECTIONS)
def test_caller_number_injections_refused(bad: str) -> None:
    with pytest.raises(UnsafeCommandValue):
        originate(caller_id_number=bad)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "gw/evil",
        "gw evil",
        "gw,x",
        "gw|x",
        "gw{",
        "${gw}",
        "gw\n",
        "a" * 65,
        ".hidden",
        "gw&park()",
        "gw'",
    ],
)
def test_gateway_names_refused(bad: str) -> None:
    with pytest.raises(UnsafeCommandValue):
        originate(gateway=bad)


@pytest.mark.parametrize(
    "bad", ["", UUID.upper(), UUID + " ", UUID + ",x=1", "not-a-uuid", UUID[:-1] + "g", "١" * 36]
)
def test_call_uuid_must_be_canonical(bad: str) -> None:
    with pytest.raises(UnsafeCommandValue):
        originate(call_uuid=bad)


@pytest.mark.parametrize("timeout", [0, -1, 301, 2.5, "30"])
def test_timeout_range(timeout: object) -> None:
    with pytest.raises(UnsafeCommandValue):
        originate(timeout_seconds=timeout)


def test_internal_targets_must_be_configured_and_safe() -> None:
    assert require_destination("1000", {"1000"}) == "1000"
    with pytest.raises(UnsafeCommandValue):
        require_destination("1001", {"1000"})
    with pytest.raises(UnsafeCommandValue):
        require_destination("1000 &park()", {"1000 &park()"})
    assert originate(destination="sales", internal_targets={"sales"}).endswith(
        "sofia/gateway/carrier_1/sales &park()"
    )


def test_uuid_commands() -> None:
    assert build_uuid_kill(UUID) == f"uuid_kill {UUID} NORMAL_CLEARING"
    assert build_uuid_kill(UUID, "USER_BUSY") == f"uuid_kill {UUID} USER_BUSY"
    assert build_uuid_bridge(UUID, UUID2) == f"uuid_bridge {UUID} {UUID2}"
    assert build_uuid_break(UUID) == f"uuid_break {UUID} all"
    assert build_uuid_transfer(UUID, "+15551234567") == (
        f"uuid_transfer {UUID} +15551234567 XML default"
    )
    assert (
        build_uuid_transfer(
            UUID, "1000", internal_targets={"1000"}, both_legs=True, context="internal"
        )
        == f"uuid_transfer {UUID} -both 1000 XML internal"
    )
    assert build_uuid_broadcast(UUID, "/var/lib/voicedock/a_1.r8") == (
        f"uuid_broadcast {UUID} /var/lib/voicedock/a_1.r8 aleg"
    )
    assert build_audio_stream_stop(UUID) == f"uuid_audio_stream {UUID} stop"


@pytest.mark.parametrize("cause", ["", "normal", "NORMAL_CLEARING extra", "FOO_BAR", "\n"])
def test_kill_cause_allowlist(cause: str) -> None:
    with pytest.raises(UnsafeCommandValue):
        build_uuid_kill(UUID, cause)


@pytest.mark.parametrize("dest", INJECTIONS)
def test_transfer_destination_injections(dest: str) -> None:
    with pytest.raises(UnsafeCommandValue):
        build_uuid_transfer(UUID, dest)


@pytest.mark.parametrize("context", ["", "a b", "default,x", "${x}", "a\nb"])
def test_transfer_context_refused(context: str) -> None:
    with pytest.raises(UnsafeCommandValue):
        build_uuid_transfer(UUID, "+15551234567", context=context)


@pytest.mark.parametrize(
    "path",
    [
        "relative.wav",
        "/a/../etc/passwd",
        "/a b.wav",
        "playback::/x.wav",
        "/x.wav both",
        "/x${y}.wav",
        "/x.wav\n",
        "att_xfer::sofia/gateway/gw/1000",
        "",
    ],
)
def test_broadcast_paths_refused(path: str) -> None:
    with pytest.raises(UnsafeCommandValue):
        build_uuid_broadcast(UUID, path)
    with pytest.raises(UnsafeCommandValue):
        build_queued_playback(UUID, path)


def test_queued_playback_is_a_sendmsg_without_lead_frames() -> None:
    uuid, headers = build_queued_playback(UUID, "/tmp/a_1.tmp.r8")
    assert uuid == UUID
    assert headers == {
        "call-command": "execute",
        "execute-app-name": "playback",
        "execute-app-arg": "/tmp/a_1.tmp.r8",
        "event-lock": "true",
    }
    assert (
        encode_sendmsg(uuid, headers)
        == (
            f"sendmsg {UUID}\ncall-command: execute\nexecute-app-name: playback\n"
            "execute-app-arg: /tmp/a_1.tmp.r8\nevent-lock: true\n\n"
        ).encode()
    )
    with pytest.raises(UnsafeCommandValue):
        build_queued_playback("not-a-uuid", "/tmp/a_1.tmp.r8")


def test_audio_stream_start() -> None:
    assert (
        build_audio_stream_start(
            UUID, "ws://127.0.0.1:8080/fs/abc", sample_rate=16000, metadata='{"call":"c1"}'
        )
        == f'uuid_audio_stream {UUID} start ws://127.0.0.1:8080/fs/abc mono 16k {{"call":"c1"}}'
    )


@pytest.mark.parametrize(
    ("url", "mix", "rate", "metadata"),
    [
        ("http://x/", "mono", 8000, None),
        ("ws://x/ a", "mono", 8000, None),
        ("ws://x/${system(id)}", "mono", 8000, None),
        ("ws://x/'", "mono", 8000, None),
        ("ws://x/", "quad", 8000, None),
        ("ws://x/", "mono", 11025, None),
        ("ws://x/", "mono", 8000, "it's"),
        ("ws://x/", "mono", 8000, "a\\b"),
        ("ws://x/", "mono", 8000, "${x}"),
        ("ws://x/", "mono", 8000, "a\nb"),
        ("ws://x/", "mono", 8000, " "),
    ],
)
def test_audio_stream_start_refusals(url: str, mix: str, rate: int, metadata: str | None) -> None:
    with pytest.raises(UnsafeCommandValue):
        build_audio_stream_start(UUID, url, mix=mix, sample_rate=rate, metadata=metadata)  # type: ignore[arg-type]


def test_loopback_originate_of_internal_targets() -> None:
    from voicedock.pbx.freeswitch.commands import build_originate_loopback, require_internal_target

    for good in ("sales", "agent-12", "1001", "queue:support", "sip:alice@pbx.example.com"):
        assert require_internal_target(good) == good
        assert require_destination(good, {good}) == good
    for bad in ("sales/x", "sales &park()", "a,b", "q|r", "queue:", "sip:a@b c", "${x}", "{a}"):
        with pytest.raises(UnsafeCommandValue):
            require_internal_target(bad)
    assert build_originate_loopback(
        call_uuid=UUID, target="queue:support", context="voicedock_transfer", timeout_seconds=20
    ) == (
        f"originate {{origination_uuid={UUID},originate_timeout=20,voicedock_warm=true}}"
        "loopback/queue:support/voicedock_transfer/XML &park()"
    )
    with pytest.raises(UnsafeCommandValue):
        build_originate_loopback(call_uuid=UUID, target="sales", context="a/b")
