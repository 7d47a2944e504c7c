"""What becomes of calls beyond their conversation: resumed after a restart and handed over
between a squad's assistants (``[calls]``),
recorded (``[recordings]``), kept (``[retention]``), listened to live (``[listen]``); the test
calls of test suites (``[rehearsal]``)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from voicedock.config.table_types import Days, NotEmpty, Table, one_of
from voicedock.domain.squads import DEFAULT_MAX_HANDOFFS
from voicedock.errors import ConfigError

DEFAULT_RESUME_MESSAGE = "Sorry, we were cut off. I'm back now. Where were we?"


class CallsSettings(Table):
    # A call a previous run left live (a crash, kill -9) whose caller is still on the line
    # goes on where it was (calls/recovery.py, docs/api.md); false: it is hung up and ends
    # "service-restart".
    resume_after_restart: bool = True
    # What the assistant says first when such a call goes on (instead of its first_message).
    resume_message: NotEmpty = DEFAULT_RESUME_MESSAGE
    # Handoffs one call placed with a squad may make (docs/squads.md); the model's handoff
    # beyond them is refused to it (a tool error it can speak about).
    max_handoffs: Annotated[int, Meta(ge=1, le=100)] = DEFAULT_MAX_HANDOFFS


RECORDING_FILE_FORMATS = ("wav", "flac")


class RecordingsSettings(Table):
    """[recordings]: call recordings (docs/recordings.md)."""

    # Where this node writes recordings (<directory>/<organization>/<call id>.<format>);
    # relative paths are from the working directory. Empty: calls are not recorded.
    directory: str = ""
    # wav or flac (stereo: caller left, assistant right)
    format: Annotated[str, one_of(RECORDING_FILE_FORMATS)] = "wav"
    retention_days: Days = 0  # older files are deleted; 0 keeps them


class RetentionSettings(Table):
    """[retention]: how long call records are kept (docs/api.md); 0: forever."""

    # Call records (with their events, transcripts and analysis) that ended longer ago than
    # this are deleted; GET /calls/{id} answers 404 for them.
    call_days: Days = 0
    # The transcript (messages, transcript events), summary and analysis of calls that ended
    # longer ago than this are deleted; the record, its status and timings stay.
    transcript_days: Days = 0
    # Audit events (GET /audit-events, voicedock audit) older than this are deleted.
    audit_days: Days = 365
    # Test suites' finished runs (GET /test-runs/{id}) asked for longer ago than this are
    # deleted ([rehearsal] max_stored_runs_per_organization bounds how many are kept).
    test_run_days: Days = 90


Listeners = Annotated[int, Meta(ge=1, le=10_000)]


class ListenSettings(Table):
    """[listen]: live listen, whisper and take over (docs/live-listen.md)."""

    enabled: bool = True  # false: GET /calls/{id}/listen answers 404
    # Listeners at once, each node: of one call, of one organization's calls, of all calls.
    max_listeners_per_call: Annotated[int, Meta(ge=1, le=100)] = 3
    max_listeners_per_organization: Listeners = 10
    max_listeners: Listeners = 50
    # How much audio a listener that falls behind may have waiting; older frames are dropped
    # (counted in voicedock_listen_frames_dropped_total), the call never waits.
    max_backlog_ms: Annotated[int, Meta(ge=100, le=60_000)] = 2000
    # The console's default "Take over" target (a warm transfer): an internal target of
    # [policy] internal_targets, or an E.164 number the policy allows. Empty: none.
    supervisor_extension: str = ""

    def check(self) -> None:
        # Whether the policy allows it is checked when the service opens (calls/listening.py).
        extension = self.supervisor_extension
        if extension and (extension != extension.strip() or len(extension) > 80):
            raise ConfigError("listen.supervisor_extension", "one line, at most 80 characters")


class RehearsalModelSettings(Table):
    """[rehearsal.caller_model], [rehearsal.judge_model]: an OpenAI-compatible chat model of
    the operator's (``POST {base_url}/chat/completions``: OpenAI, a local Ollama, vLLM or
    llama.cpp server...); no ``model``: none. Only the operator sets it, never an
    organization."""

    base_url: str = ""  # e.g. http://127.0.0.1:11434/v1
    model: str = ""
    api_key: str = ""  # empty: none sent (a local server)
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None  # None: the server's
    timeout_s: Annotated[float, Meta(gt=0, le=300)] = 30.0  # each answer, whole

    @property
    def configured(self) -> bool:
        return bool(self.model)

    def check(self, where: str) -> None:
        if not self.configured:
            return
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url", "an http:// or https:// URL, with model")


class RehearsalSettings(Table):
    """[rehearsal]: test suites' runs (docs/testing-assistants.md): each scenario is a test
    call between a simulated caller and the assistant, through the PBX; a persona's caller
    is played by ``caller_model``, a judge expectation graded by ``judge_model`` (none: the
    caller model)."""

    enabled: bool = True  # false: POST /test-suites/{id}/runs answers 403
    # Test calls at once on this node (each is two PBX channels and two media legs); a run's
    # other scenarios wait their turn.
    max_concurrent: Annotated[int, Meta(ge=1, le=100)] = 4
    # Runs waiting or running at once, each organization, counted across the nodes and
    # workers sharing the database (more: 429).
    max_runs_per_organization: Annotated[int, Meta(ge=1, le=100)] = 3
    # Finished runs kept, each organization: when a run ends, its organization's oldest
    # finished runs beyond this many are deleted (GET /test-runs/{id} answers 404 for them).
    max_stored_runs_per_organization: Annotated[int, Meta(ge=1, le=10_000)] = 200
    # What a persona's caller says at most (its turns), after the scenario's steps.
    max_persona_turns: Annotated[int, Meta(ge=1, le=50)] = 10
    # True: an assistant's changes reach callers only as a draft a run of its release gate's
    # suite passed (PATCH /assistants/{id} answers 409; so does a publish, or a split to a
    # draft, of an assistant without a gate). docs/assistant-versions.md.
    release_gate_required: bool = False
    caller_model: RehearsalModelSettings = msgspec.field(default_factory=RehearsalModelSettings)
    judge_model: RehearsalModelSettings = msgspec.field(default_factory=RehearsalModelSettings)

    def judge(self) -> RehearsalModelSettings:
        """The model that grades judge expectations: ``judge_model``, else the caller's."""
        return self.judge_model if self.judge_model.configured else self.caller_model

    def check(self) -> None:
        self.caller_model.check("rehearsal.caller_model")
        self.judge_model.check("rehearsal.judge_model")
