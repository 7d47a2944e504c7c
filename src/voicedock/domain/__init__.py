"""The domain floor: records, ids, audio formats and webhook types that every other package
shares. It imports nothing of voicedock but the error tree (``voicedock.errors``)."""
