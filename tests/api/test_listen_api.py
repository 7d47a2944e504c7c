"""``GET /calls/{id}/listen`` on the real app with a call whose media runs over a real
``MediaSession`` (``MediaFakePbx`` + ``FakeAsterisk``): the hello, both sides' frames, the
organization scoping (404), the listen grant (403 for a read-only key until the operator grants
it with ``voicedock keys``), the caps (429: per call, per organization, per node), another
node's call (409 naming it), the end of the call ending the stream; a supervisor's whisper
reaches the model and is stored as such; and the Python example of docs/live-listen.md, run as
written against this server."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from calls.test_runner import until
from e2e.conftest import start_app
from fakes.calls import call_finished
from fakes.pbx import MediaFakePbx
from fakes.world import ACME, DESTINATION, GLOBEX, SUPPORT_ID, make_settings
from media.fake_asterisk import FakeAsterisk
from media.listen_frames import parse_frame
from pipeline.fakes import FakeLlm, FakeStt, FakeTts
from pipeline.synth import silence, voiced
from voicedock.api.api_keys import issue_api_key, revoke_api_key
from voicedock.api.authentication import hash_key
from voicedock.cli import main
from voicedock.domain.records import KeyScope
from voicedock.media.codecs import ulaw_encode
from voicedock.media.listen_tap import ASSISTANT, CALLER
from voicedock.pipeline.frames import supervisor_note
from voicedock.pipeline.providers.registry import llm_registry, stt_registry, tts_registry
from voicedock.service import Service

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

PROVIDER = "listen-api-test"
DOC = Path(__file__).resolve().parents[2] / "docs" / "live-listen.md"
FRAME = 160


@dataclass
class Running:
    database: Path
    client: TestClient[Any, Any]
    service: Service
    pbx: MediaFakePbx
    fake: FakeAsterisk
    key: str
    other_key: str
    stt: FakeStt
    llm: FakeLlm
    tts: FakeTts

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def answered_call(self) -> str:
        body = {"destination": DESTINATION, "assistant_id": SUPPORT_ID}
        resp = await self.client.post("/calls/outbound", json=body, headers=self.auth())
        call_id = str((await resp.json())["call_id"])
        await self.pbx.answer(call_id)
        await until(lambda: self.tts.texts[:1] == ["Hi!"])  # the conversation runs
        return call_id

    async def control(self, call_id: str, body: dict[str, Any]) -> None:
        resp = await self.client.post(f"/calls/{call_id}/control", json=body, headers=self.auth())
        assert resp.status == 200, await resp.text()

    async def caller_says(self, pcm: bytes) -> None:
        wire = ulaw_encode(pcm)
        ws = self.fake.channel().ws
        for start in range(0, len(wire) - FRAME + 1, FRAME):
            await ws.send_bytes(wire[start : start + FRAME])
            await asyncio.sleep(0.001)

    async def refusal(self, call_id: str, key: str | None = None) -> tuple[int, dict[str, Any]]:
        """The listen handshake's refusal: its status and JSON body."""
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await self.client.ws_connect(f"/calls/{call_id}/listen", headers=self.auth(key))
        plain = await self.client.get(f"/calls/{call_id}/listen", headers=self.auth(key))
        assert plain.status == refused.value.status
        return plain.status, await plain.json()


@pytest.fixture
def providers() -> Iterator[tuple[FakeStt, FakeLlm, FakeTts]]:
    made = (FakeStt(), FakeLlm(), FakeTts(8000, ms_per_char=10))
    stt_registry.register(PROVIDER, lambda _c, _e: made[0])
    llm_registry.register(PROVIDER, lambda _c, _e: made[1])
    tts_registry.register(PROVIDER, lambda _c, _e: made[2])
    yield made
    for registry in (stt_registry, llm_registry, tts_registry):
        registry._factories.pop(PROVIDER, None)  # type: ignore[attr-defined]


@pytest.fixture
async def running(
    tmp_path: Path, providers: tuple[FakeStt, FakeLlm, FakeTts]
) -> AsyncIterator[Running]:
    database = tmp_path / "listen.db"
    settings = make_settings(f"sqlite:///{database}")
    settings.speech.stt = settings.speech.llm = settings.speech.tts = PROVIDER
    settings.listen.max_listeners_per_call = 2
    settings.listen.supervisor_extension = "sales"
    async with FakeAsterisk(send_audio=False) as fake:
        pbx = MediaFakePbx(fake)
        client, service = await start_app(settings, pbx)
        try:
            key, _ = await issue_api_key(service.store, ACME)
            other, _ = await issue_api_key(service.store, GLOBEX)
            yield Running(database, client, service, pbx, fake, key, other, *providers)
        finally:
            await client.close()


async def frames_until(
    ws: aiohttp.ClientWebSocketResponse, done: Any, within: float = 10.0
) -> list[tuple[int, int, int, np.ndarray[Any, Any]]]:
    got: list[tuple[int, int, int, np.ndarray[Any, Any]]] = []
    async with asyncio.timeout(within):
        while not done(got):
            message = await ws.receive()
            assert message.type is aiohttp.WSMsgType.BINARY, message
            got.append(parse_frame(message.data))
    return got


async def test_a_listener_hears_both_sides_until_the_call_ends(running: Running) -> None:
    call_id = await running.answered_call()
    async with running.client.ws_connect(f"/calls/{call_id}/listen", headers=running.auth()) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello == {
            "type": "hello",
            "call_id": call_id,
            "node": running.service.engine.node_id,
            "encoding": "s16le",
            "sample_rate": 8000,
            "channels": ["caller", "assistant"],
            "header_bytes": 8,
            "frame_ms": 20,
            "max_backlog_ms": 2000,
            "supervisor_extension": "sales",
        }
        said = "One moment please, I am looking that up."  # 20 frames of FakeTts
        await running.control(call_id, {"type": "say", "content": said})
        got = await frames_until(ws, lambda g: sum(f[0] == ASSISTANT for f in g) >= 10)
        # The caller answers once the assistant is done (no barge-in cuts the say short).
        await until(lambda: running.tts.texts[-1:] == [said])
        await asyncio.sleep(0.5)
        await running.caller_says(voiced(600) + silence(200))
        got += await frames_until(ws, lambda g: sum(f[0] == CALLER for f in g) >= 40)
        caller = [f for f in got if f[0] == CALLER]
        assistant = [f for f in got if f[0] == ASSISTANT]
        assert [f[1] for f in caller] == list(range(len(caller)))  # nothing dropped
        assert all(len(f[3]) == FRAME for f in got)
        # The caller's side carries what the caller sent (µ-law round trip), not silence.
        assert max(int(np.abs(f[3]).max()) for f in caller) > 1000
        assert assistant  # the assistant's speech, as the pacer sent it
        assert running.service.listening.listeners == 1

        await running.control(call_id, {"type": "end-call"})
        async with asyncio.timeout(10):
            while (message := await ws.receive()).type is aiohttp.WSMsgType.BINARY:
                pass
        assert message.type is aiohttp.WSMsgType.TEXT
        assert message.json() == {"type": "end", "reason": "call-ended", "dropped_frames": 0}
        assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await until(lambda: running.service.listening.listeners == 0)
    status, body = await running.refusal(call_id)
    assert (status, body["error"]) == (409, "Call not active")


async def test_refusals_scoping_caps_and_another_node(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_id = await running.answered_call()
    # A key of another organization does not learn the call exists.
    status, body = await running.refusal(call_id, running.other_key)
    assert (status, body) == (404, {"error": "Call not found", "message": "no call with this id"})
    assert (await running.refusal("call-nope"))[0] == 404
    # Plain GET, no upgrade: 400 telling how to connect.
    plain = await running.client.get(f"/calls/{call_id}/listen", headers=running.auth())
    assert plain.status == 400
    assert "websocket" in (await plain.json())["message"]
    # Two listeners on the call at most ([listen] max_listeners_per_call = 2 here).
    url = f"/calls/{call_id}/listen"
    first = await running.client.ws_connect(url, headers=running.auth())
    second = await running.client.ws_connect(url, headers=running.auth())
    status, body = await running.refusal(call_id)
    assert (status, body["error"]) == (429, "Too many listeners")
    await first.close()
    await until(lambda: running.service.listening.listeners == 1)
    third = await running.client.ws_connect(url, headers=running.auth())
    await second.close()
    await third.close()
    # A call another node serves (as the shared database would tell): its audio is there.
    store = running.service.store
    stored = store.get_call

    async def served_elsewhere(org_id: str | None, wanted: str) -> Any:
        call = await stored(org_id, wanted)
        return None if call is None else dataclasses.replace(call, owner_node="node-b")

    monkeypatch.setattr(store, "get_call", served_elsewhere)
    status, body = await running.refusal(call_id)
    assert status == 409
    assert body["error"] == "Call on another node"
    assert body["node"] == "node-b"
    assert "node-b" in body["message"]


async def test_a_whisper_reaches_the_model_and_is_stored_as_the_supervisor_s(
    running: Running,
) -> None:
    call_id = await running.answered_call()
    running.llm.replies = ["Of course, ten percent off today."]
    whisper = "Offer ten percent off."
    await running.control(
        call_id,
        {
            "type": "inject-context",
            "content": whisper,
            "trigger_response": True,
            "source": "supervisor",
        },
    )
    await until(lambda: bool(running.llm.calls))
    seen = [(m.role, m.content) for m in running.llm.calls[0]]
    assert ("system", supervisor_note(whisper)) in seen
    assert not any(role == "user" for role, _ in seen)  # not something the caller said
    await until(lambda: "Of course, ten percent off today." in running.tts.texts)
    await running.control(call_id, {"type": "end-call"})
    async with asyncio.timeout(10):
        await call_finished(running.service.runner, call_id)
    detail = await (await running.client.get(f"/calls/{call_id}", headers=running.auth())).json()
    said = [(m["role"], m["content"]) for m in detail["messages"]]
    assert said.index(("supervisor", whisper)) < said.index(
        ("assistant", "Of course, ten percent off today.")
    )
    turns = [e["data"] for e in detail["events"] if e["type"] == "transcript"]
    assert {"role": "supervisor", "content": whisper}.items() <= next(
        t for t in turns if t["role"] == "supervisor"
    ).items()
    usage = detail["usage"]
    assert usage is not None  # a whisper is not speech: the TTS characters are the assistant's


async def test_listen_whisper_and_take_over_are_in_the_audit_trail_once(
    running: Running,
) -> None:
    """Each supervising act on a live call, by an admin key, appears once in GET /audit-events
    with that key as its actor; another organization's admin key sees none of them."""
    supervisor, org = await issue_api_key(running.service.store, ACME, "sv", KeyScope.ADMIN)
    supervisor_id = next(
        k.id for k in await running.service.store.list_api_keys(org.id) if k.name == "sv"
    )
    call_id = await running.answered_call()
    url = f"/calls/{call_id}/listen"
    async with running.client.ws_connect(url, headers=running.auth(supervisor)) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        whisper = {"type": "inject-context", "content": "Be brief.", "source": "supervisor"}
        take_over = {"type": "transfer", "destination": "sales", "mode": "warm"}
        for body in (whisper, take_over):
            resp = await running.client.post(
                f"/calls/{call_id}/control", json=body, headers=running.auth(supervisor)
            )
            assert resp.status == 200, await resp.text()
    resp = await running.client.get("/audit-events", headers=running.auth(supervisor))
    listed = (await resp.json())["audit_events"]
    assert sorted((e["action"], e["resource_id"]) for e in listed) == [
        ("call.listen", call_id),
        ("call.take_over", call_id),
        ("call.whisper", call_id),
    ]
    assert {(e["actor"], e["actor_kind"]) for e in listed} == {(supervisor_id, "api_key")}
    assert "Be brief." not in str(listed)  # what was whispered stays in the call's record
    other, _ = await issue_api_key(running.service.store, GLOBEX, "sv", KeyScope.ADMIN)
    resp = await running.client.get("/audit-events", headers=running.auth(other))
    assert (await resp.json())["audit_events"] == []


def doc_example() -> str:
    """The Python example of docs/live-listen.md, as written."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/live-listen.md has one Python example"
    return str(blocks[0])


async def test_the_documented_python_example_listens_to_a_call(
    running: Running, tmp_path: Path
) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(doc_example(), str(DOC), "exec"), namespace)  # our own document
    call_id = await running.answered_call()
    base = str(running.client.make_url("")).rstrip("/")
    out = tmp_path / "call.wav"
    listening = asyncio.create_task(namespace["listen"](base, running.key, call_id, str(out)))
    await until(lambda: running.service.listening.listeners == 1)
    said = "Hello there, how are you today?"
    await running.control(call_id, {"type": "say", "content": said})
    await until(lambda: running.tts.texts[-1:] == [said])
    await asyncio.sleep(0.6)  # heard to its end: the caller's words do not cut it
    await running.caller_says(voiced(600) + silence(200))
    await running.control(call_id, {"type": "end-call"})
    frames = await asyncio.wait_for(listening, 15)
    assert frames[CALLER] > 20
    assert frames[ASSISTANT] > 5
    import soundfile

    audio, rate = soundfile.read(str(out), dtype="int16")
    assert rate == 8000
    assert audio.shape[1] == 2
    assert int(np.abs(audio[:, 0]).max()) > 1000  # the caller, left
    assert int(np.abs(audio[:, 1]).max()) > 0  # the assistant, right


async def test_a_console_session_listens_from_its_own_page_only(running: Running) -> None:
    call_id = await running.answered_call()
    signed = await running.client.post("/console/session", json={"api_key": running.key})
    assert signed.status == 200
    url = f"/calls/{call_id}/listen"
    # A page of another site: its handshake names that origin (the cookie alone is not enough).
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await running.client.ws_connect(url, headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    own = f"http://{running.client.host}:{running.client.port}"
    async with running.client.ws_connect(url, headers={"Origin": own}) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        # Signing out ends the stream within a second.
        session = await (await running.client.get("/console/session")).json()
        out = await running.client.delete(
            "/console/session", headers={"X-CSRF-Token": session["csrf_token"]}
        )
        assert out.status == 204
        async with asyncio.timeout(5):
            while (message := await ws.receive()).type is aiohttp.WSMsgType.BINARY:
                pass
        assert message.json()["reason"] == "credentials-ended"


async def test_revoking_the_key_ends_its_streams_and_metrics_count_listeners(
    running: Running,
) -> None:
    call_id = await running.answered_call()
    key, _ = await issue_api_key(running.service.store, ACME, "supervisor laptop")
    url = f"/calls/{call_id}/listen"
    async with running.client.ws_connect(url, headers=running.auth(key)) as ws:
        await ws.receive_json(timeout=5)
        assert running.service.listening.listeners == 1
        metrics = (await running.service.metrics.render()).decode()
        assert "voicedock_listeners 1.0" in metrics
        assert "voicedock_listen_frames_dropped_total 0.0" in metrics
        stored = await running.service.store.find_api_key(hash_key(key))
        assert stored is not None
        await revoke_api_key(running.service.store, stored)
        async with asyncio.timeout(5):
            while (message := await ws.receive()).type is aiohttp.WSMsgType.BINARY:
                pass
        assert message.json()["reason"] == "credentials-ended"
    await until(lambda: running.service.listening.listeners == 0)


async def operator(running: Running, tmp_path: Path, *args: str) -> None:
    """``voicedock keys <args>`` on the host, against the running node's database."""
    config = tmp_path / "operator.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{running.database}"\n', encoding="utf-8")
    assert await asyncio.to_thread(main, ["keys", *args, "--config", str(config)]) == 0


async def listed(running: Running, key_id: str) -> dict[str, Any]:
    """The key as ``GET /api-keys`` shows it to the organization's admin."""
    admin, _ = await issue_api_key(running.service.store, ACME, "admin", KeyScope.ADMIN)
    body = await (await running.client.get("/api-keys", headers=running.auth(admin))).json()
    (found,) = [k for k in body["api_keys"] if k["id"] == key_id]
    return dict(found)


async def test_a_read_only_key_listens_only_while_the_operator_grants_it(
    running: Running, tmp_path: Path
) -> None:
    call_id = await running.answered_call()
    store = running.service.store
    wallboard, _ = await issue_api_key(store, ACME, "wallboard", KeyScope.READ_ONLY)
    stored = await store.find_api_key(hash_key(wallboard))
    assert stored is not None
    # A dashboard's key reads the call, but does not hear it.
    seen = await running.client.get(f"/calls/{call_id}", headers=running.auth(wallboard))
    assert seen.status == 200
    status, body = await running.refusal(call_id, wallboard)
    assert (status, body["error"]) == (403, "Forbidden")
    assert "voicedock keys allow-listen" in body["message"]
    assert (await listed(running, stored.id))["listen"] is False
    assert running.service.listening.listeners == 0
    # The operator grants it on the host: the same key listens.
    await operator(running, tmp_path, "allow-listen", stored.id)
    assert (await listed(running, stored.id))["listen"] is True
    url = f"/calls/{call_id}/listen"
    async with running.client.ws_connect(url, headers=running.auth(wallboard)) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        # Withdrawn: the open stream ends within a second, and the key is refused again.
        await operator(running, tmp_path, "deny-listen", stored.id)
        async with asyncio.timeout(5):
            while (message := await ws.receive()).type is aiohttp.WSMsgType.BINARY:
                pass
        assert message.json()["reason"] == "credentials-ended"
    assert (await running.refusal(call_id, wallboard))[0] == 403
    # A full key listens as before, unless the operator withdrew it from that key too.
    async with running.client.ws_connect(url, headers=running.auth()) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
    crm, _ = await issue_api_key(store, ACME, "crm", listen=False)
    assert (await running.refusal(call_id, crm))[0] == 403


async def test_the_node_wide_listener_cap(running: Running) -> None:
    """Under the call's and the organization's caps, the node's ``[listen] max_listeners``
    still refuses one more listener (429 with Retry-After) until one leaves."""
    running.service.settings.listen.max_listeners = 1
    call_id = await running.answered_call()
    url = f"/calls/{call_id}/listen"
    first = await running.client.ws_connect(url, headers=running.auth())
    assert (await first.receive_json(timeout=5))["type"] == "hello"
    resp = await running.client.get(url, headers=running.auth())
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "5"
    body = await resp.json()
    assert body["error"] == "Too many listeners"
    assert "this node has 1 listeners" in body["message"]
    await first.close()
    await until(lambda: running.service.listening.listeners == 0)
    async with running.client.ws_connect(url, headers=running.auth()) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
