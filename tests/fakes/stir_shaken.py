"""SIP headers of a STIR/SHAKEN-signed INVITE as a carrier sends them (RFC 8224, 8225, 8588;
3GPP TS 24.229 ``verstat``): the signature is random bytes, as voicedock never checks it."""

from __future__ import annotations

import base64
import json

ORIGID = "123e4567-e89b-12d3-a456-426655440000"
CERT = "https://cert.example.org/passport.pem"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def identity_header(attest: str = "A", origid: str = ORIGID) -> str:
    """An ``Identity`` header value: the full-form PASSporT and its parameters."""
    header = {"alg": "ES256", "ppt": "shaken", "typ": "passport", "x5u": CERT}
    payload = {
        "attest": attest,
        "dest": {"tn": ["31850835037"]},
        "iat": 1_790_000_000,
        "orig": {"tn": "31612345678"},
        "origid": origid,
    }
    token = ".".join(
        (
            _b64url(json.dumps(header).encode()),
            _b64url(json.dumps(payload).encode()),
            _b64url(bytes(range(64))),
        )
    )
    return f"{token};info=<{CERT}>;alg=ES256;ppt=shaken"


def asserted_identity(caller: str = "+31612345678", verstat: str = "TN-Validation-Passed") -> str:
    """A ``P-Asserted-Identity`` header value with the carrier's ``verstat``."""
    return f"<tel:{caller};verstat={verstat}>"
