"""A headless Chromium driven by Selenium, both from Debian (scripts/bootstrap.sh installs
``chromium`` and ``chromium-driver``): nothing is downloaded when the tests run.

Without them a browser test is skipped with the reason printed, except under ``CI=true`` where
that is a failure (as for the lab PBXs). Selenium's calls block: tests run them in a thread
(``asyncio.to_thread``) so that the service under test keeps serving in the event loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lab_availability import unavailable

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@contextmanager
def headless_chromium(flags: Sequence[str] = ()) -> Iterator[Any]:
    """A Chrome webdriver (typed loosely: selenium is a test dependency only); ``flags``: more
    of Chromium's command-line switches (``--host-resolver-rules``: names on loopback)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("browser", "selenium is not installed (pip install -e '.[test]')")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            unavailable("browser", f"{path} is missing (scripts/bootstrap.sh installs it)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--no-first-run",
        "--disable-extensions",
        *flags,
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
