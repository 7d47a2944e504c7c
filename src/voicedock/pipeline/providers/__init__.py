"""Speech and language providers behind the `Stt`, `Llm` and `Tts` seams (``base.py``), made
from their typed sections by ``registry.py``."""
