"""What a live call hands back when it ends: ``LiveCallResult``, made by ``live_call_result``.

The end reason, the transcript (assistant messages cut to what was heard), the per-turn
latencies, the post-call analysis (summary, sentiment, the plan's structured data checked
against the organization's schema), the recording's length, the answering machine's verdict
the consent plan's outcome and the AI disclosure's.
``record()`` is what the engine stores (``record.py``, free of the audio pipeline).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from voicedock.calls.live.disclosure import DisclosureOpening
from voicedock.calls.live.record import LiveRecord
from voicedock.domain.ai_disclosure import AiDisclosure
from voicedock.domain.flows import FlowProgress
from voicedock.domain.json import JsonObject
from voicedock.pipeline.analysis.post_call import AnalysisPlan, AnalysisResult, analyze, redacted
from voicedock.pipeline.analysis.schema_checks import StructuredDataCheck
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.frames import TranscriptEntry, TurnLatency
from voicedock.pipeline.providers.base import Llm

_ANALYSIS_TIMEOUT_S = 15.0


@dataclass(slots=True)
class LiveCallResult:
    end_reason: str
    transcript: list[TranscriptEntry]
    latencies: list[TurnLatency]
    analysis: AnalysisResult
    recording_duration_seconds: float | None = None  # None: not recorded
    answering_machine: JsonObject | None = None  # the detection's verdict and evidence
    consent: JsonObject | None = None  # the consent plan's outcome (``consent.py``)
    ai_disclosure: AiDisclosure | None = None  # how it was given (``disclosure.py``)
    flow: FlowProgress | None = None  # where the assistant's flow went (``flow_run.py``)

    def latency_records(self) -> list[JsonObject]:
        """Per-turn latencies as stored with the call (``Call.latency``)."""
        return [dataclasses.asdict(latency) for latency in self.latencies]

    def record(self) -> LiveRecord:
        """What the engine stores with the call (``LiveRecords.store_live_record``)."""
        return LiveRecord(
            end_reason=self.end_reason,
            transcript=self.transcript,
            latency=self.latency_records(),
            summary=self.analysis.summary,
            analysis_result=self.analysis.to_dict(),
            recording_duration_seconds=self.recording_duration_seconds,
            answering_machine=self.answering_machine,
            consent=self.consent,
            ai_disclosure=self.ai_disclosure,
            flow=self.flow,
        )


async def live_call_result(
    end_reason: str,
    dialogue: Dialogue | None,
    llm: Llm | None,
    plan: AnalysisPlan | None,
    *,
    check: StructuredDataCheck | None,
    recording_duration_seconds: float | None,
    answering_machine: JsonObject | None,
    redact: Callable[[str], str] | None = None,
    consent: JsonObject | None = None,
    transcribed: bool = True,
    disclosure: DisclosureOpening | None = None,
    flow: FlowProgress | None = None,
) -> LiveCallResult:
    """The result of a call that ended for ``end_reason`` (``dialogue`` None: it never
    started), analysed by ``llm`` after ``plan``; ``check`` checks the structured data;
    ``redact``: the analysis's texts as the call keeps them (its input, the transcript, is
    redacted already). Not ``transcribed`` (the caller refused it): no transcript, and no
    model reads one to analyse it. ``disclosure``: the call's AI disclosure, how it was given
    read from what was said."""
    transcript = list(dialogue.transcript) if dialogue is not None and transcribed else []
    if not transcribed:
        llm = None
    latencies = list(dialogue.latencies) if dialogue is not None else []
    # The model's answer is waited for at most _ANALYSIS_TIMEOUT_S; its structured data's
    # check is bounded by the node's schema workers (their wait and deadline).
    analysis = await analyze(
        transcript, llm, plan, check=check, answer_timeout_s=_ANALYSIS_TIMEOUT_S
    )
    if redact is not None:
        analysis = redacted(analysis, redact)
    return LiveCallResult(
        end_reason,
        transcript,
        latencies,
        analysis,
        recording_duration_seconds=recording_duration_seconds,
        answering_machine=answering_machine,
        consent=consent,
        ai_disclosure=None
        if disclosure is None or dialogue is None
        else disclosure.outcome(dialogue.transcript),
        flow=flow,
    )
