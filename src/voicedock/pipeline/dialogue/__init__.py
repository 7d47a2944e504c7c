"""A call's dialogue: the engines that hold it, the surface a live call drives, and the parts
both engines compose.

Two engines speak on a call, and two dialogues are made of them one after the other:

    turn_engine.py          the turn engine: VAD → STT → LLM → TTS
    realtime_dialogue.py    a speech-to-speech provider's dialogue
    realtime_fallback.py    a speech-to-speech call that goes on with the turn engine when its
                            session fails
    squad_dialogue.py       a squad's call, going on with the member the model hands it to
    conversation_config.py  the dialogue settings of one call (prompt, timing, fallbacks)

Both engines implement ``Dialogue`` (``surface.py``; what both share of it besides their
parts: ``base.py``) and are built from the same components, one job each:

    assistant_audio.py      the assistant's audio: voicedock's own voice (TTS) into the
                            output sink, what is audible, cutting it on barge-in and
                            knowing what the caller heard of it
    interruptible_tasks.py  the tasks that think or speak for the assistant: a barge-in
                            stops them
    transcript.py           the call's transcript, each message told once, in spoken order
    events.py               what a live call signals (typed events) and the bus it owns
    first_message.py        what the call opens with (a greeting, or a refusal that ends it)
    tool_calls.py           carrying out the model's tool calls, with the tool filler
    keypad_input.py         the caller's keys into one entry, with its timeout
    ending.py               why a call ends, and ending it: grace, final message, fallback

The turn engine's own processors:

    hearing.py              the caller's words: each turn's audio transcribed (merged with
                            an earlier turn not answered yet), and what is left at the close
    reply.py                the model's reply, sentence by sentence, with the LLM filler and
                            the rounds of tool calls
    barge_in.py             the assistant's messages and the floor: what a barge-in stops, a
                            say waiting for the caller's turn, each message settled as heard
    history.py              the model's context: the prompt, the messages, a reply's slot

The speech-to-speech dialogue's own parts are in ``realtime/`` (the caller's audio to the
provider, the per-turn latency, the model's reply and voicedock's own words, the model's
function calls, the silence watch).

Fillers themselves (when the caller is to hear one, their phrases) are
``pipeline/speaking/filler.py``.
"""

from voicedock.pipeline.dialogue.surface import Dialogue

__all__ = ["Dialogue"]
