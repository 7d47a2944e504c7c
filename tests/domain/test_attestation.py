"""An inbound caller's STIR/SHAKEN attestation read from its INVITE's headers
(``domain/attestation.py``): the PASSporT's ``attest`` and ``origid``, the ``verstat``
parameter, and anything malformed, oversized or unknown read as absent."""

from __future__ import annotations

import base64
import json

import pytest

from fakes.stir_shaken import ORIGID, asserted_identity, identity_header
from voicedock.domain.attestation import MAX_HEADER, CallerAttestation, caller_attestation

pytestmark = pytest.mark.unit


def _passport(payload: object) -> str:
    part = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJFUzI1NiJ9.{part}.c2ln;info=<https://c.example/x.pem>;ppt=shaken"


@pytest.mark.parametrize("attest", ["A", "B", "C"])
def test_the_identity_headers_attest_claim_is_read(attest: str) -> None:
    assert caller_attestation(identity_header(attest)) == CallerAttestation(
        attest=attest,  # type: ignore[arg-type]
        origid=ORIGID,
    )


def test_verstat_of_the_asserted_identity_or_else_the_from_header() -> None:
    passed = asserted_identity(verstat="TN-Validation-Passed")
    failed = '"Caller" <sip:+31612345678@carrier.example;user=phone;verstat=TN-Validation-Failed>'
    assert caller_attestation(None, passed) == CallerAttestation(verstat="TN-Validation-Passed")
    assert caller_attestation(None, None, failed) == CallerAttestation(
        verstat="TN-Validation-Failed"
    )
    assert caller_attestation(None, "<tel:+1;VERSTAT=no-tn-validation>") == CallerAttestation(
        verstat="No-TN-Validation"
    )
    both = caller_attestation(identity_header("B"), passed)
    assert both == CallerAttestation(attest="B", origid=ORIGID, verstat="TN-Validation-Passed")


@pytest.mark.parametrize(
    "identity",
    [
        None,
        "",
        "not-a-passport",
        "a.b;ppt=shaken",  # two parts
        "eyJh..c2ln;ppt=shaken",  # the compact form: no payload to read
        "eyJh.!!!.c2ln",  # not base64url
        _passport({"attest": "D"}),  # no such level
        _passport({"attest": "a"}),
        _passport(["A"]),  # not an object
        _passport({"attest": "A", "pad": "x" * MAX_HEADER}),  # too long to read
    ],
)
def test_a_malformed_or_unknown_identity_header_asserts_nothing(identity: str | None) -> None:
    assert caller_attestation(identity) is None


def test_a_bad_origid_is_left_out_and_an_unknown_verstat_is_none() -> None:
    assert caller_attestation(_passport({"attest": "C", "origid": "<script>"})) == (
        CallerAttestation(attest="C")
    )
    assert caller_attestation(None, "<tel:+31612345678;verstat=Trust-Me>") is None
    assert caller_attestation(None, "<tel:+31612345678;verstat=TN-Validation-Passed-ish>") is None
