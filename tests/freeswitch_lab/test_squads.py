"""A squad's handoff on the real lab FreeSWITCH: the receptionist's model hands the call over
to billing, who speaks its transition in its own voice (espeak-ng), and the party hears it;
the same call as ``tests/e2e/test_squads_e2e.py`` makes on Asterisk, with the offline
engines (Whisper hears the party, Piper and espeak-ng speak)."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.audio_helpers import read_finished_recording, transcribe
from e2e.test_squads_e2e import (
    assert_receptionist_then_billing_heard,
    handoff_call,
    llm,  # noqa: F401 (the fixture)
)
from fakes.llm_standin import LlmStandIn
from freeswitch_lab.lab_service import LabFreeswitchService, lab_settings, serve_on_lab
from voicedock_lab.freeswitch import LabFreeswitch
from voicedock_lab.freeswitch_config import DEMO

pytestmark = [pytest.mark.freeswitch_lab, pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_the_receptionist_hands_the_call_over_to_billing(
    freeswitch_lab: LabFreeswitch,
    tmp_path: Path,
    llm: LlmStandIn,  # noqa: F811
) -> None:
    settings = lab_settings(freeswitch_lab, tmp_path / "fslab.db", None)
    settings.speech.openai_base_url = llm.base_url
    settings.speech.openai_api_key = "sk-lab-operator"
    async with serve_on_lab(freeswitch_lab, settings) as (client, service, key):
        live = LabFreeswitchService(client, service, key, freeswitch_lab)
        call_id = await handoff_call(live, llm, DEMO)
        # The party's recording of this call: the newest of its recordings.
        made = freeswitch_lab.recordings_dir.glob(f"{DEMO}-*.wav")
        recordings = sorted(made, key=lambda p: p.stat().st_mtime)
        assert recordings, call_id
        pcm, rate = await read_finished_recording(recordings[-1])
    assert_receptionist_then_billing_heard(await transcribe(pcm, rate))
