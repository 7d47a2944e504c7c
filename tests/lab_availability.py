"""Whether a lab PBX can run here, and what a test does when it cannot (both lab sessions).

Without the lab a test is skipped with the reason printed, except under ``CI=true`` where
that is a failure.
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def unavailable(what: str, reason: str) -> NoReturn:
    """Skip (fail under ``CI=true``): ``<what> unavailable: <reason>``."""
    message = f"{what} unavailable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    print(message)
    pytest.skip(message)


def chroot_blocker(needs: str) -> str | None:
    """Why no lab chroot can run here (root is needed for ``needs``), or None."""
    if os.geteuid() != 0:
        return f"needs root ({needs})"
    if shutil.which("chroot") is None:
        return "no chroot binary"
    return None


# How long a lab PBX whose instance is thrown away (its directory deleted just after) has to
# exit on SIGTERM before SIGKILL. An idle lab exits at once; on SIGTERM Asterisk first waits up
# to 15 s for every channel to be destroyed, so one channel that never ends (left by an
# earlier test) would hold each stop for the whole 10 s of ``down``'s default, at the end
# of every worker and at every restart of a stalled lab. Nothing of such an instance is read
# afterwards: no reason to wait.
DISCARD_STOP_S = 1.0


def keep_instance() -> bool:
    """VOICEDOCK_LAB_KEEP=1 keeps a test instance's directory (logs, recordings)."""
    return os.environ.get("VOICEDOCK_LAB_KEEP") == "1"
