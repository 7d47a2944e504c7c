"""The model's context on the turn engine: the instructions, the assistant's seeded turns, then
the call's own messages in the order they happened.

A reply reserves its place (``reserve``) when it is asked for, so what happens while it is
thought and spoken (a keypad entry, a ``say``) comes after it, as the caller heard it; once
said, its slot holds what the caller heard (``fill``), or goes when nothing was.

What a search of the assistant's knowledge bases found for the caller's last turn
(``retrieved``: ``knowledge.retrieval`` ``every_turn``) comes last, as a system message of that
turn's requests only: the next turn's search replaces it.
"""

from __future__ import annotations

import dataclasses

from voicedock.pipeline.dialogue.conversation_config import ConversationConfig
from voicedock.pipeline.frames import ChatMessage


class ModelHistory:
    def __init__(self, config: ConversationConfig) -> None:
        self._config = config
        self.messages: list[ChatMessage] = []
        self.language_line = ""  # the caller's language's line, after the instructions
        self.retrieved = ""  # what the knowledge bases gave the last turn (see the module)
        self.step_line = ""  # the flow's node's instructions, after the language's line

    def context(self) -> list[ChatMessage]:
        """What the model is sent for its next reply."""
        lines = (self._config.instructions, self.language_line, self.step_line)
        system = ChatMessage("system", "\n\n".join(line for line in lines if line))
        own = (m for m in self.messages if m.meaningful)
        found = [ChatMessage("system", self.retrieved)] if self.retrieved else []
        return [system, *self._config.history, *self._config.carried, *own, *found]

    def add(self, message: ChatMessage) -> None:
        """A message of the call's; the caller's words as the redaction plan lets the model
        see them."""
        if message.role == "user" and message.content:
            message = dataclasses.replace(message, content=self._config.for_model(message.content))
        self.messages.append(message)

    def reserve(self) -> ChatMessage:
        """A place for an assistant message not said yet."""
        slot = ChatMessage("assistant", "")
        self.messages.append(slot)
        return slot

    def fill(self, slot: ChatMessage, text: str) -> None:
        """The reserved message is over: it holds ``text``, or goes when nothing was said."""
        index = next(i for i, m in enumerate(self.messages) if m is slot)
        if text:
            self.messages[index] = ChatMessage("assistant", text)
        else:
            del self.messages[index]
