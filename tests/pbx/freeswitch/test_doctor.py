"""The FreeSWITCH doctor's checks that need no FreeSWITCH (the rest run on the lab:
tests/freeswitch_lab/test_doctor.py)."""

from __future__ import annotations

import pytest

from voicedock.config import FreeswitchSettings, PbxSettings, Settings
from voicedock.pbx.freeswitch.doctor import media_url_problems

pytestmark = pytest.mark.unit


def settings(**freeswitch: object) -> Settings:
    fs = FreeswitchSettings(esl_password="s3cretPassword", **freeswitch)  # type: ignore[arg-type]
    return Settings(pbx=PbxSettings(kind="freeswitch", freeswitch=fs))


def test_a_loopback_media_url_is_fine_for_a_freeswitch_on_this_host() -> None:
    assert media_url_problems(settings()) == []


def test_a_loopback_media_url_cannot_be_reached_by_a_remote_freeswitch() -> None:
    [problem] = media_url_problems(settings(esl_host="10.0.0.5"))
    assert problem.startswith("pbx.freeswitch.media_public_url: FreeSWITCH at 10.0.0.5")
    assert "ws://127.0.0.1:8091" in problem


def test_a_wildcard_media_host_needs_a_public_url() -> None:
    [problem] = media_url_problems(settings(media_host="0.0.0.0"))
    assert "cannot connect to ws://0.0.0.0:8091" in problem
    fixed = settings(media_host="0.0.0.0", media_public_url="ws://10.0.0.2:8091")
    assert media_url_problems(fixed) == []
