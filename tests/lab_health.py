"""A lab Asterisk that stops answering is restarted before the next test that uses it, and the
run's summary says so.

A worker's lab Asterisk serves every lab test the worker runs. Should it stop creating channels
or stop taking connections (seen on a loaded two-core CI machine with Asterisk 22.10: ARI's
``externalMedia`` unanswered for minutes while requests on open connections were answered),
every later test on that lab would fail for it, whatever it tests. So before each test that
uses a lab Asterisk (``lab``, ``lab16``), the lab is asked through ARI, on a new connection, to
make a call's media leg as voicedock does (``externalMedia``, deleted at once; Asterisk 16, which
has none: a Local channel through its CLI), within ``PROBE_TIMEOUT_S``. A lab that does not is
restarted on the same ports; what it had up at that moment and the last lines it printed are
kept, and the run's summary lists each restart (``summary``). The test that was running when it
stopped still fails: the restart is reported, never hidden.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from lab_availability import DISCARD_STOP_S
from lab_logs import state_of
from voicedock_lab.errors import LabError
from voicedock_lab.server import LabAsterisk

PROBE_TIMEOUT_S = 3.0
# The lab Asterisk fixtures (tests/lab_session.py, tests/e2e/conftest.py).
LAB_FIXTURES = ("lab", "lab16")
# A call's media leg as voicedock asks for it (server mode: the channel waits for voicedock).
MEDIA_PROBE = {
    "app": "voicedock-lab-probe",
    "external_host": "INCOMING",
    "format": "ulaw",
    "transport": "websocket",
    "encapsulation": "none",
    "connection_type": "server",
}
# Asterisk 16: a channel made and ended at once (no such context; the Local pair is made).
CHANNEL_PROBE = "channel originate Local/probe@voicedock-lab-probe/n application NoOp"
RESTARTED = "lab Asterisk restarted"
LOG_LINES = 30


def stalled(lab: LabAsterisk) -> str | None:
    """Why ``lab`` does not answer (None when it does): not running, or no media channel made
    through ARI on a new connection within ``PROBE_TIMEOUT_S`` (Asterisk 16, which has no
    WebSocket channel: no channel made through its CLI)."""
    if not lab.running():
        return "not running"
    if lab.settings.asterisk == "16":
        try:
            lab.cli(CHANNEL_PROBE, timeout=PROBE_TIMEOUT_S)
        except LabError as exc:
            return f"no channel made: {exc}"
        return None
    return _no_media_channel(lab)


def _no_media_channel(lab: LabAsterisk) -> str | None:
    """ARI's ``externalMedia`` (a WebSocket channel waiting for its connection, as a call's
    media leg) made and deleted, each on a new connection; what failed, or None."""
    user, password = lab.ari_credentials
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    channel = f"lab-probe-{uuid.uuid4().hex[:12]}"
    query = urllib.parse.urlencode({**MEDIA_PROBE, "channelId": channel})
    for method, path in (
        ("POST", f"/channels/externalMedia?{query}"),
        ("DELETE", f"/channels/{channel}"),
    ):
        request = urllib.request.Request(
            f"{lab.ari_url.rstrip('/')}{path}",
            method=method,
            headers={"Authorization": f"Basic {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S):
                pass
        except (urllib.error.URLError, OSError) as exc:
            return f"ARI {method} {path.split('?')[0]}: {exc}"
    return None


def restarted_if_stalled(lab: LabAsterisk) -> str | None:
    """Restart ``lab`` if it does not answer (``stalled``): why, and what it had up and
    printed last; None when it answered."""
    why = stalled(lab)
    if why is None:
        return None
    state = f"{state_of(lab)}\n{lab.log_tail(LOG_LINES)}" if lab.running() else ""
    lab.down(timeout=DISCARD_STOP_S)  # what it had up is read: a stalled lab is not waited on
    lab.up(timeout=60)
    return f"{why}\n{state}".rstrip()


@pytest.fixture(autouse=True)
def _lab_answers(request: pytest.FixtureRequest) -> None:
    """Before a test that uses a lab Asterisk: restart that lab if it does not answer."""
    for name in LAB_FIXTURES:
        if name not in request.fixturenames:
            continue
        lab = request.getfixturevalue(name)
        if isinstance(lab, LabAsterisk) and (seen := restarted_if_stalled(lab)) is not None:
            request.node.user_properties.append((RESTARTED, seen))


def summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Each restart of a lab Asterisk, by the test it was restarted before (every worker's)."""
    restarts = [
        (report.nodeid, value)
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "setup"
        for key, value in getattr(report, "user_properties", ())
        if key == RESTARTED
    ]
    if not restarts:
        return
    terminalreporter.write_sep("=", f"{RESTARTED} before {len(restarts)} test(s)")
    for nodeid, seen in restarts:
        terminalreporter.write_line(f"{nodeid}: {seen}")
