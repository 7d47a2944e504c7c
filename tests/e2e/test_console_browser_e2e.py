"""The web console in a real headless Chromium, on a real call through the lab Asterisk.

An operator signs in with an API key, sees the call an app placed appear in the list, opens
it, watches its transcript grow live (the greeting, then what the lab party said, with no
reload), presses "End call" and sees the call end; the status filter finds it among the ended
calls; on a second call, whose party talks over the greeting, the cut-off greeting is marked
as such, showing what the party heard. A revoked key is refused at sign-in. Screenshots of the
call pages (laptop and phone width) are kept in tests/artifacts/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from e2e.audio_helpers import (
    TALK_OVER_PARTY,
    UTTERANCE_PARTY,
    require_offline_speech,
    warm_offline_speech,
)
from e2e.browser import headless_chromium, screenshot_path
from e2e.conftest import serve, service_settings
from e2e.test_audio_e2e import LONG_GREETING, SHORT_GREETING, place_call, wait_recorded
from fakes.world import ACME
from voicedock.api.api_keys import issue_api_key, revoke_api_key
from voicedock.api.authentication import hash_key
from voicedock_lab.server import LabAsterisk

pytestmark = [pytest.mark.e2e, pytest.mark.asterisk]

WAIT_S = 30.0


def wait_for(driver: Any, condition: Any, what: str, timeout: float = WAIT_S) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)
    except TimeoutException:
        raise AssertionError(f"the console never showed {what}") from None


def sign_in(driver: Any, base: str, key: str) -> None:
    """As a keyboard user: the field has the focus, the key is typed, Enter submits."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{base}/console")
    field = wait_for(driver, lambda d: d.find_element(By.ID, "api-key"), "the sign-in form")
    wait_for(driver, lambda d: field.is_displayed(), "the API key field")
    assert driver.switch_to.active_element == field
    label = driver.find_element(By.CSS_SELECTOR, "label[for=api-key]")
    assert label.text == "API key"
    field.clear()
    field.send_keys(key, Keys.ENTER)


def error_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "sign-in-error").text)


def refused_sign_in(driver: Any, base: str, key: str) -> str:
    sign_in(driver, base, key)
    return str(wait_for(driver, lambda d: error_text(d) or False, "a sign-in error"))


def signed_in(driver: Any, base: str, key: str) -> None:
    from selenium.webdriver.common.by import By

    sign_in(driver, base, key)
    wait_for(driver, lambda d: d.find_element(By.ID, "calls-view").is_displayed(), "the calls")


def open_call_from_list(driver: Any, call_id: str) -> None:
    from selenium.webdriver.common.by import By

    link = wait_for(
        driver,
        lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-call-id="{call_id}"] a') or False,
        "the placed call in the list",
    )[0]
    driver.execute_script("window.consoleMarker = 'same page';")  # gone if the page reloads
    link.click()
    wait_for(driver, lambda d: d.find_element(By.ID, "call-view").is_displayed(), "the call page")


def transcript(driver: Any) -> list[tuple[str, str]]:
    from selenium.webdriver.common.by import By

    return [
        (str(item.get_attribute("class")), str(item.text))
        for item in driver.find_elements(By.CSS_SELECTOR, "#transcript li")
    ]


def status_shown(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, "call-facts").get_attribute("data-status"))


def end_call(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    button = driver.find_element(By.ID, "end-call")
    assert button.is_enabled()
    button.click()
    wait_for(driver, lambda d: status_shown(d) == "ended", "the call ended")


def whole_page_screenshot(driver: Any, path: Path) -> bool:
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    driver.set_window_size(1280, min(int(height) + 120, 4000))
    return bool(driver.save_screenshot(str(path)))


def filters_find_the_call(driver: Any, call_id: str) -> None:
    """Back on the list, the status filter (the API's) shows the call among the ended only."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver.find_element(By.LINK_TEXT, "\u2190 All calls").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "calls-view").is_displayed(), "the calls")
    row = f'tr[data-call-id="{call_id}"]'
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, row) or False, "the call listed")
    for status, listed in (("in-progress", False), ("ended", True)):
        Select(driver.find_element(By.ID, "f-status")).select_by_value(status)
        driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
        wait_for(
            driver,
            lambda d, listed=listed: bool(d.find_elements(By.CSS_SELECTOR, row)) is listed,
            f"the call {'listed' if listed else 'hidden'} under status={status}",
        )
    Select(driver.find_element(By.ID, "f-status")).select_by_value("")  # any status again
    driver.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()


def barge_in_marked(driver: Any) -> str:
    cut = wait_for(
        driver,
        lambda d: [text for cls, text in transcript(d) if "interrupted" in cls] or False,
        "an assistant message cut off at barge-in",
    )
    return str(cut[0])


def fits_a_phone(driver: Any, path: Path) -> bool:
    """At 390 px wide nothing makes the page scroll sideways (tables scroll in their box)."""
    driver.set_window_size(390, 844)
    wide = driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
    )
    assert int(wide) <= 0, f"the page is {wide} px wider than a phone screen"
    return bool(driver.save_screenshot(str(path)))


async def test_console_signs_in_follows_a_lab_call_live_and_ends_it(
    lab: LabAsterisk, tmp_path: Path
) -> None:
    require_offline_speech()
    await warm_offline_speech()
    settings = service_settings(lab, tmp_path / "console.db", "ari")
    # As configured by default: a "__Host-" Secure cookie, which Chromium keeps over plain
    # http from 127.0.0.1 (a secure context).
    settings.console.secure_cookie = True
    live = await serve(settings)
    try:
        base = f"http://127.0.0.1:{live.client.port}"
        revoked, _ = await issue_api_key(live.service.store, ACME, "old laptop")
        revoked_key = await live.service.store.find_api_key(hash_key(revoked))
        assert revoked_key is not None
        await revoke_api_key(live.service.store, revoked_key)
        with headless_chromium() as driver:
            refusal = await asyncio.to_thread(refused_sign_in, driver, base, revoked)
            assert "refused" in refusal
            await asyncio.to_thread(signed_in, driver, base, live.key)

            call_id = await place_call(live, UTTERANCE_PARTY, SHORT_GREETING)
            await asyncio.to_thread(open_call_from_list, driver, call_id)

            def greeting_then_caller() -> tuple[int, list[tuple[str, str]]]:
                first = wait_for(driver, lambda d: transcript(d) or False, "the greeting")
                assert SHORT_GREETING in first[0][1], first
                grown = wait_for(
                    driver,
                    lambda d: [t for t in transcript(d) if "user" in t[0]] and transcript(d),
                    "what the caller said",
                )
                return len(first), grown

            before, after = await asyncio.to_thread(greeting_then_caller)
            assert len(after) > before
            caller = [text for cls, text in after if "user" in cls]
            assert any("appointment" in text.lower() for text in caller), caller
            same_page = await asyncio.to_thread(
                driver.execute_script, "return window.consoleMarker;"
            )
            assert same_page == "same page"  # it grew live, the page was never reloaded

            await asyncio.to_thread(end_call, driver)
            ended = await wait_recorded(live, call_id, within=15)
            assert ended["status"] == "ended"
            controls = [e["data"]["type"] for e in ended["events"] if e["type"] == "control"]
            assert controls == ["end-call"]
            shot = screenshot_path("console-call-page.png")
            assert await asyncio.to_thread(whole_page_screenshot, driver, shot)
            assert shot.stat().st_size > 10_000
            print(f"console call page screenshot: {shot}")
            phone = screenshot_path("console-call-page-phone.png")
            assert await asyncio.to_thread(fits_a_phone, driver, phone)
            print(f"console call page on a phone-sized screen: {phone}")
            await asyncio.to_thread(filters_find_the_call, driver, call_id)

            # A caller who talks over the greeting: the console marks what was cut off.
            talked_over = await place_call(live, TALK_OVER_PARTY, LONG_GREETING)
            await asyncio.to_thread(driver.set_window_size, 1280, 1000)
            await asyncio.to_thread(open_call_from_list, driver, talked_over)
            cut = await asyncio.to_thread(barge_in_marked, driver)
            assert "cut off at barge-in" in cut
            heard = cut.removeprefix("Assistant:").split("— cut off")[0].strip()
            assert 0 < len(heard) < len(LONG_GREETING)
            assert LONG_GREETING.startswith(heard.rstrip(".…"))
            barge = screenshot_path("console-barge-in.png")
            assert await asyncio.to_thread(whole_page_screenshot, driver, barge)
            print(f"console call page after a barge-in: {barge}")
            await asyncio.to_thread(end_call, driver)
    finally:
        await live.client.close()
