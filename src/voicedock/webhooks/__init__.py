"""voicedock.webhooks"""
