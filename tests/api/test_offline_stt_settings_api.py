"""The offline STT's keys of an assistant's ``stt_config``, through REST."""

from __future__ import annotations

import pytest

from .conftest import Api

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("stt_config", "key"),
    [
        ({"provider": "offline", "encoder_context": "short"}, "stt_config.encoder_context"),
        ({"provider": "faster-whisper", "streaming": "yes"}, "stt_config.streaming"),
    ],
)
async def test_a_bad_offline_stt_setting_is_400_naming_the_key(
    api: Api, stt_config: dict[str, object], key: str
) -> None:
    body = {"name": "x", "stt_config": stt_config}
    resp = await api.client.post("/assistants", json=body, headers=api.auth())
    assert resp.status == 400
    assert key in await resp.text()


async def test_the_offline_stt_settings_are_kept(api: Api) -> None:
    stt = {"provider": "offline", "encoder_context": "full", "streaming": False}
    resp = await api.client.post(
        "/assistants", json={"name": "before", "stt_config": stt}, headers=api.auth()
    )
    assert resp.status == 201, await resp.text()
    saved = await resp.json()
    assert saved["stt_config"]["encoder_context"] == "full"
    assert saved["stt_config"]["streaming"] is False
