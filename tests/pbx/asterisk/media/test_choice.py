"""``choose_transport``: which transport carries a server's call audio, from its running
modules or, when they are unknown, its version; and a refusal saying what is missing (the
module, the Asterisk it exists from) so that the operator knows what to install."""

from __future__ import annotations

import pytest

from voicedock.pbx.asterisk.media.choice import MEDIA_TRANSPORTS, choose_transport
from voicedock.pbx.asterisk.server_info import AsteriskServerInfo

pytestmark = pytest.mark.unit

ALL = frozenset({"chan_websocket", "chan_rtp", "chan_audiosocket", "res_ari"})
WEBSOCKET_SINCE = "20.16, 21.11, 22.6 and 23.0"


def server(version: str, *modules: str) -> AsteriskServerInfo:
    return AsteriskServerInfo(version, frozenset(modules))


def unlisted(version: str) -> AsteriskServerInfo:
    return AsteriskServerInfo(version, None)


@pytest.mark.parametrize(
    ("modules", "chosen"),
    [
        (ALL, "websocket"),
        (ALL - {"chan_websocket"}, "rtp"),
        ({"chan_audiosocket"}, "audiosocket"),
        ({"chan_rtp", "chan_audiosocket"}, "rtp"),
        ({"chan_websocket", "chan_audiosocket"}, "websocket"),
    ],
)
def test_auto_takes_the_first_the_server_runs(modules: frozenset[str], chosen: str) -> None:
    choice = choose_transport("auto", AsteriskServerInfo("22.6.0", frozenset(modules)))
    assert choice.transport == chosen
    assert choice.reason.startswith("Asterisk 22.6.0: media over ")


def test_auto_says_why_it_passed_the_better_ones_over() -> None:
    choice = choose_transport("auto", server("22.6.0", "chan_audiosocket"))
    assert choice.transport == "audiosocket"
    assert choice.reason.startswith("Asterisk 22.6.0: media over AudioSocket (")
    assert "chan_websocket.so is not loaded" in choice.reason
    assert "chan_rtp.so is not loaded" in choice.reason
    assert "load = chan_rtp.so" in choice.reason  # where to load it


def test_auto_passes_over_a_module_the_release_cannot_have() -> None:
    # Debian's 16.28: chan_rtp runs, no AudioSocket in its build.
    debian16 = choose_transport("auto", server("16.28.0~dfsg-0+deb11u4", "chan_rtp", "res_ari"))
    assert debian16.transport == "rtp"
    assert "Asterisk 16.28.0~dfsg-0+deb11u4: media over RTP" in debian16.reason
    assert f"no chan_websocket: it exists from Asterisk {WEBSOCKET_SINCE} on" in debian16.reason
    # A 22 before 22.6 listing a chan_websocket of its own is not trusted with it.
    early = choose_transport("auto", server("22.5.0", *ALL))
    assert early.transport == "rtp"


@pytest.mark.parametrize(
    ("version", "chosen"),
    [
        ("23.0.0", "websocket"),
        ("24.1.0", "websocket"),
        ("22.6.0", "websocket"),
        ("22.10.1+dfsg+~cs6.15.60671435-1", "websocket"),
        ("22.5.2", "rtp"),
        ("21.11.0", "websocket"),
        ("21.10.0", "rtp"),
        ("20.16.0", "websocket"),
        ("20.15.2", "rtp"),
        ("certified/20.7-cert3", "rtp"),
        ("19.8.0", "rtp"),
        ("18.20.2", "rtp"),
        ("16.28.0~dfsg-0+deb11u4", "rtp"),
        ("16.6.0", "rtp"),
        ("GIT-master-abc1234", "rtp"),  # no release: only what every server of ours has
        ("", "rtp"),
    ],
)
def test_auto_with_unknown_modules_trusts_the_version(version: str, chosen: str) -> None:
    choice = choose_transport("auto", unlisted(version))
    assert choice.transport == chosen


def test_auto_on_a_server_before_external_media() -> None:
    choice = choose_transport("auto", unlisted("16.2.0"))
    assert choice.transport is None
    assert choice.reason.startswith("Asterisk 16.2.0 can carry no call audio: ")
    assert "externalMedia" in choice.reason
    assert "Asterisk 16.6" in choice.reason
    listed = choose_transport("auto", server("16.2.0", "chan_rtp"))
    assert listed.transport is None
    assert "externalMedia" in listed.reason  # chan_rtp is there: the ARI resource is not
    assert "no chan_rtp" not in listed.reason
    assert f"chan_websocket: it exists from Asterisk {WEBSOCKET_SINCE}" in listed.reason
    assert "chan_audiosocket: it exists from Asterisk 18.0" in listed.reason


def test_auto_on_a_server_running_none_of_them() -> None:
    choice = choose_transport("auto", server("22.6.0", "res_ari"))
    assert choice.transport is None
    assert choice.reason.startswith("Asterisk 22.6.0 can carry no call audio: ")
    for module in ("chan_websocket", "chan_rtp", "chan_audiosocket"):
        assert f"{module}.so is not loaded (modules.conf: load = {module}.so)" in choice.reason


@pytest.mark.parametrize("transport", MEDIA_TRANSPORTS)
def test_a_forced_transport_the_server_runs(transport: str) -> None:
    choice = choose_transport(transport, server("22.6.0", *ALL))
    assert choice.transport == transport
    assert choice.reason.endswith("(media_transport)")
    trusted = choose_transport(transport, unlisted("23.1.0"))  # modules unknown: trusted
    assert trusted.transport == transport


def test_a_forced_transport_even_when_a_better_one_runs() -> None:
    choice = choose_transport("rtp", server("22.6.0", *ALL))
    assert choice.transport == "rtp"
    assert choice.reason == "Asterisk 22.6.0: media over RTP (media_transport)"


@pytest.mark.parametrize(
    ("setting", "info", "says"),
    [
        (
            "rtp",
            unlisted("16.2.0"),
            "Asterisk 16.2.0: media_transport = 'rtp', but no ARI externalMedia: "
            "it exists from Asterisk 16.6 on",
        ),
        (
            "websocket",
            unlisted("18.20.2"),
            "Asterisk 18.20.2: media_transport = 'websocket', but no chan_websocket: "
            f"it exists from Asterisk {WEBSOCKET_SINCE} on",
        ),
        (
            "websocket",
            server("22.5.0", "chan_rtp"),
            "Asterisk 22.5.0: media_transport = 'websocket', but no chan_websocket",
        ),
        (
            "audiosocket",
            server("16.28.0~dfsg-0+deb11u4", "chan_rtp"),
            "Asterisk 16.28.0~dfsg-0+deb11u4: media_transport = 'audiosocket', but no "
            "chan_audiosocket: it exists from Asterisk 18.0 on",
        ),
        (
            "audiosocket",
            server("20.5.0", "chan_rtp"),
            "Asterisk 20.5.0: media_transport = 'audiosocket', but chan_audiosocket.so is not "
            "loaded (modules.conf: load = chan_audiosocket.so)",
        ),
        (
            "websocket",
            server("22.6.0", "chan_rtp"),
            "chan_websocket.so is not loaded (modules.conf: load = chan_websocket.so)",
        ),
        (
            "rtp",
            AsteriskServerInfo("", frozenset()),
            "Asterisk (version unknown): media_transport = 'rtp', but chan_rtp.so is not loaded",
        ),
    ],
)
def test_a_forced_transport_the_server_lacks(
    setting: str, info: AsteriskServerInfo, says: str
) -> None:
    choice = choose_transport(setting, info)
    assert choice.transport is None
    assert says in choice.reason
