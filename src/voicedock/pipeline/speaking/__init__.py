"""What speaks on the line: the assistant's voice, from the model's words to the audio sent.

llm_stream.py   a streamed model reply cut into speakable sentences, on deadlines
synthesis.py    the node's synthesis: sentences synthesized once, in one bounded pool
filler.py       what the caller hears while the reply waits (no dead air)
output.py       the output sink the media session implements, and what was heard of it
node_voices.py  the voices this node can speak, each TTS engine's
"""
