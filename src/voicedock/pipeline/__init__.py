"""voicedock.pipeline"""
