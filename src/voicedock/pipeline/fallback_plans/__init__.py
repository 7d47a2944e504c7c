"""Fallback plans: an engine of a call (its LLM, STT, TTS) as an ordered list of providers,
the next taking over when one fails, within the turn.

    plan.py   what every plan shares: its entries, the node's breakers it consults
              (``pipeline/pools/provider_health.py``), the report of each move (``Switch``)
    llm.py    the model's reply: whole sentences kept, the next entry goes on from them
    hedge.py  who starts the reply: the next model asked too when one is slow to start
    stt.py    the caller's turn: the same audio transcribed by the next entry
    tts.py    the assistant's voice: the sentence spoken by the next entry, which the call keeps
    realtime.py  a speech-to-speech session: the pipeline the call goes on with when it fails
    serving.py  which entry serves each engine now (a turn's record, the call's usage)
"""
