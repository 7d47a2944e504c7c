"""Admission control: a new call is refused while the node's offline speech work would make
the calls in progress slower.

The measure is the node's recognition pool (``pipeline/hearing/recognition.py``): transcriptions
that wait longer than ``[speech] admission_wait_ms`` for a worker mean the recognizer has more work
than the cores carry, and the talking callers already wait longer for their answers.
While that lasts, a new call that would transcribe with the offline recognizer is refused:

* ``POST /calls/outbound``: ``503 {"error": "Node at capacity", ...}`` with ``Retry-After``,
  before anything is stored or dialled, so the same request (with its ``Idempotency-Key``) may
  simply be sent again;
* a campaign's dialer: the contact is left as it was (not an attempt) and the dialer waits for
  ``Retry-After`` (``calls/campaigns/dialer.py``);
* an inbound call: rejected at the PBX as any call voicedock does not take (Asterisk: hang-up
  cause ``rejected``; FreeSWITCH: ``CALL_REJECTED``), so the carrier or the dialplan can route it
  elsewhere; as for a number voicedock does not serve, no call record is made (the refusal is
  logged and counted).

The turn model that a pipeline call with ``turn_detection`` "model" asks at the caller's pauses
runs in the same pool (``pipeline/hearing/turn_detection.py``): such a call counts as one on the
recognizer. A call whose STT is a cloud provider and whose turns silence decides (or a
speech-to-speech model) is never refused for it: it puts no work on the recognizer. A warm
transfer's agent answering by voice is transcribed in the same pool
(``calls/transfers/decision.py``), so that work counts in the wait too. Each refusal is counted
(``refused``, by kind) for the metrics.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Literal

from voicedock.calls.errors import NodeTakesNoCall
from voicedock.calls.live.providers import uses_local_stt, uses_turn_model
from voicedock.config import SpeechSettings
from voicedock.domain.assistant_config import AssistantConfig
from voicedock.pipeline.hearing.recognition import NodeRecognition

log = logging.getLogger("voicedock.calls")

Kind = Literal["outbound", "campaign", "inbound"]
KINDS: tuple[Kind, ...] = ("outbound", "campaign", "inbound")
SPEECH_CAPACITY = "speech-capacity"  # the reason of a refusal, in logs and metrics


class NodeAtCapacity(NodeTakesNoCall, status=503, error="Node at capacity"):
    """503: the node's offline speech is at capacity; retry after ``Retry-After``."""


class SpeechAdmission:
    def __init__(self, recognition: NodeRecognition, speech: SpeechSettings) -> None:
        self.recognition = recognition
        self._speech = speech
        self.refused: Counter[Kind] = Counter()

    def refusal(self, assistant_config: AssistantConfig, kind: Kind) -> int | None:
        """``None``: admit a new call of this assistant configuration; else refuse it, and
        the seconds after which trying again is worth it (``Retry-After``)."""
        if self.recognition.admits() or not self._uses_pool(assistant_config):
            return None
        self.refused[kind] += 1
        wait_ms = self.recognition.wait_s() * 1000
        log.info(
            "new %s call refused: %s (transcriptions wait %.0f ms for a recognizer, bound %d ms)",
            kind,
            SPEECH_CAPACITY,
            wait_ms,
            self._speech.admission_wait_ms,
        )
        return self.recognition.retry_after_s()

    def _uses_pool(self, assistant_config: AssistantConfig) -> bool:
        """Whether a call of this configuration puts work on the recognition pool: it
        transcribes with the offline recognizer, or asks the turn model at pauses."""
        speech = self._speech
        return uses_local_stt(assistant_config, speech) or uses_turn_model(assistant_config, speech)

    def check(self, assistant_config: AssistantConfig, kind: Kind) -> None:
        """``refusal`` as the API's answer: raises ``NodeAtCapacity`` (503)."""
        retry_after = self.refusal(assistant_config, kind)
        if retry_after is not None:
            raise NodeAtCapacity(
                "this node's offline speech recognition is at capacity: the calls in progress "
                "would get slower; retry after the time in Retry-After",
                retry_after_seconds=retry_after,
            )
