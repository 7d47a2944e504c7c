"""What hears the line: the caller's audio and keys turned into turns, words and decisions.

vad.py                    voice activity per frame: webrtcvad, or Silero VAD by choice
silero_vad.py             Silero VAD, the small neural detector
echo.py                   the echo gate: the assistant's own voice coming back is not the caller
endpointing.py            turn-taking as a pure state machine over the VAD's decisions
listener.py               audio in → VAD → endpointing → whole utterances
turn_detection.py         the turn model asked at each pause whether the caller finished
turn_model.py             Smart Turn: the end of a turn heard in the audio
turn_completion.py        the end of a turn read in the transcript's text
recognition.py            the node's offline speech recognition in one bounded pool
streaming_recognition.py  the caller's turn transcribed while it is spoken
keypad.py                 the caller's keys collected into one entry
secure_digits.py          a secure keypad entry, never handed to the dialogue
answering_machine.py      a person or a machine answered, from the first seconds of audio
call_screening.py         a call-screening assistant answered, from its words
phone_menu.py             a company's line: its menu, its hold or a person, from its words
line_utterances.py        the far end's audio cut into utterances, for a wait before the dialogue
"""
