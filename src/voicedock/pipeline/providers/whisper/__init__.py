"""Offline speech recognition with faster-whisper: the STT, its weights and its decoding."""
