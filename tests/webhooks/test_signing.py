from __future__ import annotations

import base64

import pytest

from voicedock.domain.webhooks import decode_secret, generate_secret
from voicedock.errors import (
    BadSignature,
    InvalidSecret,
    MissingHeaders,
    TimestampOutOfTolerance,
    VerificationError,
)
from voicedock.webhooks.signing import new_message_id, sign, signature, verify

pytestmark = pytest.mark.unit

# Test vector published with the Standard Webhooks reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
# A syntactically valid signature that does not match anything.
OTHER_SIGNATURE = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="


def spec_headers() -> dict[str, str]:
    return sign(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY)


def test_signature_matches_the_spec_vector() -> None:
    assert signature(SPEC_SECRET, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_sign_produces_the_three_headers() -> None:
    assert spec_headers() == {
        "webhook-id": SPEC_MSG_ID,
        "webhook-timestamp": str(SPEC_TIMESTAMP),
        "webhook-signature": SPEC_SIGNATURE,
    }


def test_secret_without_prefix_is_accepted() -> None:
    unprefixed = SPEC_SECRET.removeprefix("whsec_")
    assert signature(unprefixed, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_verify_accepts_the_spec_vector() -> None:
    verified = verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP + 10)
    assert verified.msg_id == SPEC_MSG_ID
    assert verified.timestamp == SPEC_TIMESTAMP


def test_verify_is_case_insensitive_on_header_names() -> None:
    headers = {key.title(): value for key, value in spec_headers().items()}
    assert verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP).msg_id == SPEC_MSG_ID


@pytest.mark.parametrize(
    "body",
    [b'{"test": 2432232315}', b'{"test":2432232314}', SPEC_BODY + b" ", b""],
)
def test_tampered_body_is_rejected(body: bytes) -> None:
    with pytest.raises(BadSignature):
        verify(SPEC_SECRET, spec_headers(), body, now=SPEC_TIMESTAMP)


def test_wrong_secret_is_rejected() -> None:
    with pytest.raises(BadSignature):
        verify(generate_secret(), spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP)


def test_changed_id_or_timestamp_is_rejected() -> None:
    headers = spec_headers() | {"webhook-id": "msg_other"}
    with pytest.raises(BadSignature):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)
    headers = spec_headers() | {"webhook-timestamp": str(SPEC_TIMESTAMP + 1)}
    with pytest.raises(BadSignature):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize(
    "value",
    [
        OTHER_SIGNATURE,
        "v2," + SPEC_SIGNATURE.removeprefix("v1,"),
        "v1a," + SPEC_SIGNATURE.removeprefix("v1,"),
        SPEC_SIGNATURE.removeprefix("v1,"),
        "v1,not base64!",
        "",
    ],
)
def test_bad_signature_values_are_rejected(value: str) -> None:
    headers = spec_headers() | {"webhook-signature": value}
    with pytest.raises(BadSignature):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_any_one_matching_signature_in_the_list_is_enough() -> None:
    listed = f"{OTHER_SIGNATURE} v2,abc {SPEC_SIGNATURE} {OTHER_SIGNATURE}"
    headers = spec_headers() | {"webhook-signature": listed}
    assert verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP).msg_id == SPEC_MSG_ID


def test_rotation_signs_with_old_and_new_secret() -> None:
    new_secret = generate_secret()
    headers = sign(
        new_secret, SPEC_MSG_ID, SPEC_TIMESTAMP, SPEC_BODY, previous_secrets=[SPEC_SECRET]
    )
    assert headers["webhook-signature"].split()[1] == SPEC_SIGNATURE
    for secret in (new_secret, SPEC_SECRET):
        verify(secret, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header_is_rejected(missing: str) -> None:
    headers = spec_headers()
    del headers[missing]
    with pytest.raises(MissingHeaders):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


@pytest.mark.parametrize("offset", [-301, 301, -86400, 10**6])
def test_timestamp_outside_five_minutes_is_rejected(offset: int) -> None:
    with pytest.raises(TimestampOutOfTolerance):
        verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP + offset)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_inside_five_minutes_is_accepted(offset: int) -> None:
    verify(SPEC_SECRET, spec_headers(), SPEC_BODY, now=SPEC_TIMESTAMP + offset)


@pytest.mark.parametrize("raw", ["", "abc", "1614265330.5", "-1614265330", "１６１４２６５３３０"])
def test_malformed_timestamp_is_rejected(raw: str) -> None:
    headers = spec_headers() | {"webhook-timestamp": raw}
    with pytest.raises(TimestampOutOfTolerance):
        verify(SPEC_SECRET, headers, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_every_rejection_is_a_verification_error() -> None:
    for error in (BadSignature, MissingHeaders, TimestampOutOfTolerance):
        assert issubclass(error, VerificationError)


def test_generated_secrets_are_prefixed_random_and_usable() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_")
    assert first != second
    assert len(decode_secret(first)) == 32
    headers = sign(first, "msg_1", 1000, b"{}")
    assert verify(first, headers, b"{}", now=1000).msg_id == "msg_1"


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_",
        "whsec_not*base64",
        "whsec_" + base64.b64encode(b"x" * 23).decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
    ],
)
def test_invalid_secrets_are_refused(secret: str) -> None:
    with pytest.raises(InvalidSecret):
        decode_secret(secret)


def test_generate_secret_refuses_weak_lengths() -> None:
    with pytest.raises(InvalidSecret):
        generate_secret(16)


@pytest.mark.parametrize("msg_id", ["", "msg.1", "msg 1", "msg\r\nx: y", "m" * 129])
def test_message_ids_that_could_confuse_the_signed_content_are_refused(msg_id: str) -> None:
    with pytest.raises(ValueError, match="message id"):
        sign(SPEC_SECRET, msg_id, SPEC_TIMESTAMP, SPEC_BODY)


def test_new_message_ids_are_unique_and_signable() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    for msg_id in ids:
        assert msg_id.startswith("msg_")
        sign(SPEC_SECRET, msg_id, SPEC_TIMESTAMP, SPEC_BODY)
