"""The speech-to-speech dialogue's own parts (``pipeline/dialogue/realtime_dialogue.py`` composes
them with the parts both engines share, ``pipeline/dialogue/``):

    caller_stream.py   the caller's audio to the provider: a bounded queue, at its rate
    turn_latency.py    the per-turn latency, from the server VAD's decision on
    messages.py        the model's reply and voicedock's own words on the line, each recorded
                       cut to what the caller heard
    function_calls.py  the model's function calls: carried out, recorded, answered
    silence_watch.py   the call's limits and the silence prompt, on the clock
    answer_watch.py    the model's answer awaited: the dead air covered, a session that does
                       not answer in time failed
    unanswered_turns.py  the caller's words the session neither transcribed nor answered:
                       what a pipeline taking over a failed session hears again
    handover.py        a failed session handed to the pipeline that takes over: what was
                       being said played, what it goes on from
    own_words.py       what voicedock says itself (first message, say, silence prompt, tool
                       filler): the model's reply cut, the model told
    keypad_entries.py  the caller's keys: each one a barge-in, an entry one user item the
                       model answers
"""
