"""voicedock.store"""
