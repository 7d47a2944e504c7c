"""voicedock: AI voice assistants on the phone through an on-prem Asterisk or FreeSWITCH."""

__version__ = "0.1.0"
