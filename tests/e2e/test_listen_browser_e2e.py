"""The console's Listen, Whisper and Take over buttons in a real headless Chromium, on a real
call through the lab Asterisk.

A supervisor signs in, opens the call an app placed to the lab's speaking party and presses
Listen: the page's websocket receives both sides' frames and decodes each into a Web Audio
buffer (the page counts them on ``#listen-state``), the button turns into "Stop listening"
and back. A whisper typed in the page reaches the model (the OpenAI-compatible stand-in) and
shows in the live transcript as the supervisor's; Take over, with the extension the listen
stream's hello filled in (``[listen] supervisor_extension``), warm-transfers the call there:
the call ends ``transferred`` and the Listen button goes back to rest, disabled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import UTTERANCE_PARTY
from e2e.browser import headless_chromium, screenshot_path
from e2e.conftest import serve
from e2e.test_audio_e2e import wait_recorded
from e2e.test_console_browser_e2e import (
    open_call_from_list,
    signed_in,
    status_shown,
    transcript,
    wait_for,
    whole_page_screenshot,
)
from e2e.test_listen_e2e import (
    REPLY,
    SUPERVISOR_EXTENSION,
    WHISPER,
    assistant,
    bridged_to,
    supervised_settings,
    supervisor_request,
)
from fakes.llm_standin import LlmStandIn
from pbx.freeswitch.live_service import speech_fakes
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk, pytest.mark.timeout(150)]


def listen_state(driver: Any) -> dict[str, str]:
    """The counters and the button, read in one script: frames keep arriving between reads."""
    seen = driver.execute_script(
        """
        const node = document.getElementById("listen-state");
        const button = document.getElementById("listen");
        return {
          state: String(node.dataset.state), caller: String(node.dataset.framesCaller),
          assistant: String(node.dataset.framesAssistant), decoded: String(node.dataset.decoded),
          button: button.textContent, pressed: String(button.getAttribute("aria-pressed")),
          disabled: button.disabled ? "True" : "False",
        };
        """
    )
    return {key: str(value) for key, value in dict(seen).items()}


def press_listen_until_listening(driver: Any) -> dict[str, str]:
    """Press Listen (again, while the call's audio is still starting) until it listens."""
    from selenium.webdriver.common.by import By

    def listening(d: Any) -> bool:
        state = listen_state(d)["state"]
        if state in ("off", "refused", "stopped"):
            d.find_element(By.ID, "listen").click()
        return state == "listening"

    wait_for(driver, listening, "the call being listened to")
    return listen_state(driver)


def frames_decoded(driver: Any) -> dict[str, str]:
    def enough(d: Any) -> dict[str, str] | bool:
        seen = listen_state(d)
        ok = int(seen["caller"]) > 100 and int(seen["assistant"]) > 0
        return seen if ok and int(seen["decoded"]) > 100 else False

    return dict(wait_for(driver, enough, "frames of both sides decoded in the page"))


def stop_and_listen_again(driver: Any) -> tuple[dict[str, str], dict[str, str]]:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "listen").click()
    stopped = wait_for(
        driver,
        lambda d: (s := listen_state(d))["state"] == "stopped" and s,
        "listening stopped",
    )
    again = press_listen_until_listening(driver)
    return dict(stopped), again


def whisper(driver: Any, text: str) -> str:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "whisper-text")
    field.clear()
    field.send_keys(text)
    driver.find_element(By.ID, "whisper").click()
    wait_for(
        driver,
        lambda d: "inject-context: Command sent" in d.find_element(By.ID, "control-result").text,
        "the whisper sent",
    )
    shown = wait_for(
        driver,
        lambda d: [t for cls, t in transcript(d) if "supervisor" in cls] or False,
        "the whisper in the live transcript",
    )
    return str(shown[0])


def take_over(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    extension = str(driver.find_element(By.ID, "take-over-to").get_attribute("value"))
    driver.find_element(By.ID, "take-over").click()
    wait_for(driver, lambda d: status_shown(d) == "ended", "the call ended", timeout=60)
    return extension


@pytest.fixture
async def llm() -> AsyncIterator[LlmStandIn]:
    async with LlmStandIn(reply=REPLY) as standin:
        yield standin


async def test_the_console_listens_whispers_and_takes_a_lab_call_over(
    lab: LabAsterisk, tmp_path: Path, llm: LlmStandIn
) -> None:
    async with speech_fakes() as (name, _fakes):
        live = await serve(supervised_settings(lab, tmp_path / "listen-console.db", name))
        try:
            base = f"http://127.0.0.1:{live.client.port}"
            with headless_chromium() as driver:
                await asyncio.to_thread(signed_in, driver, base, live.key)
                status, reply = await live.post(
                    "/calls/outbound", {"destination": UTTERANCE_PARTY, "assistant": assistant(llm)}
                )
                assert status == 200, reply
                call_id = str(reply["call_id"])
                await asyncio.to_thread(open_call_from_list, driver, call_id)
                at_rest = await asyncio.to_thread(listen_state, driver)
                assert (at_rest["button"], at_rest["pressed"]) == ("Listen", "false")
                await live.wait_status(call_id, ("in-progress",), within=20)

                on = await asyncio.to_thread(press_listen_until_listening, driver)
                assert (on["button"], on["pressed"]) == ("Stop listening", "true")
                # The party speaks 3 s after answering: its frames, and the greeting's.
                heard = await asyncio.to_thread(frames_decoded, driver)
                assert int(heard["decoded"]) <= int(heard["caller"]) + int(heard["assistant"])
                stopped, again = await asyncio.to_thread(stop_and_listen_again, driver)
                assert (stopped["button"], stopped["pressed"]) == ("Listen", "false")
                assert (again["button"], again["pressed"]) == ("Stop listening", "true")

                shown = await asyncio.to_thread(whisper, driver, WHISPER)
                assert shown.startswith("Supervisor (whisper):"), shown
                assert WHISPER in shown
                await supervisor_request(llm)  # the model received it as a supervisor's

                extension = await asyncio.to_thread(take_over, driver)
                assert extension == SUPERVISOR_EXTENSION  # from the listen stream's hello
                ended = await wait_recorded(live, call_id, within=20)
                assert (ended["end_reason"], ended["transferred_to"]) == (
                    "transferred",
                    SUPERVISOR_EXTENSION,
                )
                assert ("supervisor", WHISPER) in [
                    (m["role"], m["content"]) for m in ended["messages"]
                ]
                done = await asyncio.to_thread(
                    wait_for,
                    driver,
                    lambda d: (
                        (s := listen_state(d))["state"] == "ended" and s["disabled"] == "True" and s
                    ),
                    "the listen stream ended with the call, Listen disabled",
                )
                assert (done["button"], done["disabled"]) == ("Listen", "True")
                shot = screenshot_path("console-listen.png")
                assert await asyncio.to_thread(whole_page_screenshot, driver, shot)
                print(f"console call page after take over: {shot}")
            async with asyncio.timeout(10):
                while not await bridged_to(live, call_id, SUPERVISOR_EXTENSION):
                    await asyncio.sleep(0.2)
            await live.pbx.ari.hangup_channel(call_id)
        finally:
            await live.client.close()
