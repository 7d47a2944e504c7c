"""A client's address as the audit trail keeps it: masked."""

from __future__ import annotations

import pytest

from voicedock.domain.audit import mask_address

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("192.0.2.77", "192.0.2.0"),
        ("10.1.2.3", "10.1.2.0"),
        ("2001:db8:1234:5678:9abc::1", "2001:db8:1234::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:192.0.2.77", "192.0.2.0"),  # IPv4-mapped: as IPv4
        ("", None),
        (None, None),
        ("/run/voicedock.sock", None),
    ],
)
def test_addresses_are_masked(address: str | None, masked: str | None) -> None:
    assert mask_address(address) == masked
