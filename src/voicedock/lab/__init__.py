"""voicedock.lab"""
