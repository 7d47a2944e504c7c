"""voicedock.media"""
