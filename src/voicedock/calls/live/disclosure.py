"""The AI disclosure on a live call (``[ai_disclosure]``, docs/compliance.md).

Where a call must disclose that the caller speaks with an AI, the assistant's opening (its
consent plan's message, else its first message) is looked at once, before the call starts:
holding one of the disclosure's phrases (case-insensitive), it is the disclosure and is said
as it would be; else voicedock says the operator's text first, to its end (a barge-in does
not cut it on a pipeline call), and the opening follows it. One implementation for every
dialogue (pipeline, speech-to-speech, the first member of a squad): the call's first message
is held back (``held_from``) and ``run`` says both, or the consent window after it. A refused
call's final message (``hang_up_after_first_message``) begins with the text instead.

Whether it was said is read from the transcript when the call ends: the call's first
assistant message, as heard, holds the disclosure (``AiDisclosure``, on the call record).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from voicedock.calls.live.consent import ConsentWindow, said_to_its_end
from voicedock.domain.ai_disclosure import FIRST_MESSAGE, SPOKEN, AiDisclosure, DisclosureRule
from voicedock.domain.timestamps import iso
from voicedock.pipeline.dialogue import Dialogue
from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.frames import TranscriptEntry

log = logging.getLogger("voicedock.calls")


class DisclosureOpening:
    """One call's required disclosure: given by the assistant's opening, or said first."""

    def __init__(
        self, rule: DisclosureRule, opening: str | None, consent: ConsentWindow | None = None
    ) -> None:
        """``opening``: what the assistant would say first (None: it waits for the caller);
        ``consent``: the call's consent window, run once the disclosure was said."""
        self.rule = rule
        self.speaks = not rule.given_by(opening)  # voicedock says the operator's text
        self.says_first = False  # ... on its own, before anything else (``run``)
        self._consent = consent
        self._first: str | None = None  # the first message, said after it

    def held_from(self, config: ConversationConfig) -> ConversationConfig:
        """The call's configuration with its first message (what the consent window or the
        screening left of it) held back until the disclosure was said; a refused call's
        final message begins with the disclosure instead."""
        self.says_first = self.speaks
        first = config.first_message
        if not self.speaks or first is None:
            return config
        if config.hang_up_after_first_message:
            self.says_first = False
            return dataclasses.replace(config, first_message=f"{self.rule.text} {first}")
        self._first = first
        return dataclasses.replace(config, first_message=None)

    async def run(self, dialogue: Dialogue) -> None:
        """Say the operator's text to its end, then what the call opens with."""
        log.info("call: AI disclosure said first (required by the %s)", self.rule.required_by)
        await said_to_its_end(dialogue, self.rule.text)
        if self._consent is not None:
            await self._consent.run(dialogue)
        elif self._first:
            await dialogue.say(self._first)

    def outcome(self, transcript: Sequence[TranscriptEntry]) -> AiDisclosure:
        """How the call gave it: said when its first assistant message, as the caller heard
        it, holds the disclosure."""
        first = next((e for e in transcript if e.role == "assistant"), None)
        said = first is not None and self.rule.given_by(first.content)
        return AiDisclosure(
            required_by=self.rule.required_by,
            method=SPOKEN if self.speaks else FIRST_MESSAGE,
            said=said,
            at=iso(datetime.fromtimestamp(first.started_at, UTC)) if said and first else None,
        )
