"""voicedock.calls"""
