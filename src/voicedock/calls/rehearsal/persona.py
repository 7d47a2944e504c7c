"""A scenario's ``persona`` played by the operator's caller model: after each of the
assistant's turns the caller leg heard, the model is asked what the caller says next.

The model is the caller: its system message is the persona and the rules of the part (speak
as the caller, in a sentence or two, nothing but the words said), the assistant's turns as
heard (transcribed at the caller leg) are the ``user`` messages, the caller's own turns its
``assistant`` messages. It ends the call by answering ``[hang up]`` (a goodbye may come
before it: said, then the caller hangs up); an empty answer hangs up too."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from voicedock.calls.rehearsal.models import ChatModel
from voicedock.domain.rehearsal import MAX_SAY_CHARS, HeardTurn
from voicedock.errors import ProviderError
from voicedock.pipeline.frames import ChatMessage, Role

HANG_UP = "[hang up]"
RULES = f"""\
You are the caller in a phone call to a business's voice assistant. Play this caller:

{{persona}}

Rules: answer with only the words the caller says next, as spoken on the phone, in one or \
two short sentences: no quotes, no stage directions, no description. When the caller is \
done (got what they called for, or gives up), answer {HANG_UP} (a goodbye may come before \
it)."""
_HANG_UP = re.compile(re.escape(HANG_UP), re.IGNORECASE)
NOTHING_HEARD = "(The call is answered; nothing was said yet.)"


@dataclass(frozen=True, slots=True)
class CallerLine:
    """What the caller says next (``text``, may be empty) and whether it hangs up after."""

    text: str
    hang_up: bool


def persona_messages(persona: str, heard: Sequence[HeardTurn]) -> list[ChatMessage]:
    """The caller model's context: the persona and its rules, then the call so far."""
    messages = [ChatMessage("system", RULES.format(persona=persona))]
    for turn in sorted(heard, key=lambda t: t.at_ms):
        role: Role = "user" if turn.role == "assistant" else "assistant"
        if messages[-1].role == role:  # one turn heard in pieces
            messages[-1] = ChatMessage(role, f"{messages[-1].content} {turn.text}")
        else:
            messages.append(ChatMessage(role, turn.text))
    if len(messages) == 1:
        messages.append(ChatMessage("user", NOTHING_HEARD))
    return messages


def caller_line(answer: str) -> CallerLine:
    """The model's answer as the caller's next line (at most ``MAX_SAY_CHARS``)."""
    marker = _HANG_UP.search(answer)
    said = answer if marker is None else answer[: marker.start()]
    text = " ".join(said.split())[:MAX_SAY_CHARS].strip()
    return CallerLine(text, hang_up=marker is not None or not text)


class CallerModelFailed(Exception):
    """The caller model gave no answer (its ``ProviderError``'s message)."""


class PersonaCaller:
    """A persona's caller: its next line, asked of the caller model."""

    def __init__(self, model: ChatModel, persona: str) -> None:
        self._model = model
        self._persona = persona

    async def next_line(self, heard: Sequence[HeardTurn]) -> CallerLine:
        """Raises ``CallerModelFailed``."""
        try:
            answer = await self._model.answer(persona_messages(self._persona, heard))
        except ProviderError as exc:
            raise CallerModelFailed(str(exc)) from exc
        return caller_line(answer)


__all__ = [
    "HANG_UP",
    "CallerLine",
    "CallerModelFailed",
    "PersonaCaller",
    "caller_line",
    "persona_messages",
]
