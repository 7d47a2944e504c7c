"""voicedock.pbx"""
