"""voicedock.api"""
