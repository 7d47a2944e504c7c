from __future__ import annotations

import socket

import pytest

from voicedock.domain.webhooks import redact
from voicedock.egress import EgressPolicy, GuardedResolver, NetworkTarget, check_url
from voicedock.errors import UnsafeUrl

pytestmark = pytest.mark.unit

PRODUCTION = EgressPolicy()
LAB = EgressPolicy(allow_loopback=True, allow_private=True)


class FakeDns:
    """Answers from a table; counts lookups; can change its answers (rebinding)."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host not in self.table:
            raise UnsafeUrl(host, "host does not resolve")
        return list(self.table[host])


DNS = FakeDns(
    {
        "hooks.example.com": ["93.184.216.34"],
        "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
        "localhost.example.com": ["127.0.0.1"],
        "internal.example.com": ["10.1.2.3"],
        "metadata.example.com": ["169.254.169.254"],
        "mixed.example.com": ["93.184.216.34", "192.168.1.10"],
        "mapped.example.com": ["::ffff:10.0.0.1"],
        "empty.example.com": [],
    }
)


async def test_public_url_is_accepted() -> None:
    checked = await check_url("https://hooks.example.com/voicedock?x=1", PRODUCTION, DNS)
    assert checked.host == "hooks.example.com"
    assert checked.port == 443
    assert checked.addresses == ("93.184.216.34",)


async def test_public_ipv6_name_and_literal_are_accepted() -> None:
    assert (await check_url("http://v6.example.com/", PRODUCTION, DNS)).port == 80
    literal = await check_url("http://[2606:2800:220:1::1]:8443/", PRODUCTION, DNS)
    assert literal.addresses == ("2606:2800:220:1::1",)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/", "only http"),
        ("file:///etc/passwd", "only http"),
        ("gopher://hooks.example.com/", "only http"),
        ("javascript:alert(1)", "only http"),
        ("hooks.example.com/path", "only http"),
        ("http://user:pw@hooks.example.com/", "credentials"),
        ("http://user@hooks.example.com/", "credentials"),
        ("http:///path-only", "no host"),
        ("http://hooks.example.com:0/", "invalid port"),
        ("http://hooks.example.com:99999/", "not a valid URL"),
    ],
)
async def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        await check_url(url, PRODUCTION, DNS)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "loopback"),
        ("http://127.8.9.10:8088/ari", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://localhost.example.com/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://metadata.example.com/", "link-local"),
        ("http://[fe80::1]/", "link-local"),
        ("http://10.0.0.1/", "private"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://100.64.0.1/", "private"),
        ("http://[fc00::1]/", "private"),
        ("http://internal.example.com/", "private"),
        ("http://mixed.example.com/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://[::]/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://[ff02::1]/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        # IPv6 spellings of internal IPv4 addresses
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://[::ffff:7f00:1]/", "loopback"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://mapped.example.com/", "private"),
        ("http://[64:ff9b::7f00:1]/", "loopback"),
        ("http://[2002:a00:1::]/", "private"),
        ("http://[::127.0.0.1]/", "reserved"),
        # numeric hosts that resolvers read as IPv4 in other notations
        ("http://2130706433/", "non-canonical numeric host"),
        ("http://017700000001/", "non-canonical numeric host"),
        ("http://0x7f000001/", "non-canonical numeric host"),
        ("http://0x7f.1/", "non-canonical numeric host"),
        ("http://127.1/", "non-canonical numeric host"),
        ("http://0177.0.0.1/", "non-canonical numeric host"),
        ("http://10.0.0.010/", "non-canonical numeric host"),
        ("http://a.b.0x10/", "non-canonical numeric host"),
        # names that do not resolve
        ("http://nowhere.example.com/", "does not resolve"),
        ("http://empty.example.com/", "does not resolve"),
    ],
)
async def test_internal_targets_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        await check_url(url, PRODUCTION, DNS)


async def test_loopback_is_allowed_only_with_its_flag() -> None:
    loopback_only = EgressPolicy(allow_loopback=True)
    assert (await check_url("http://127.0.0.1:8080/", loopback_only, DNS)).port == 8080
    assert (await check_url("http://[::ffff:127.0.0.1]/", loopback_only, DNS)).port == 80
    with pytest.raises(UnsafeUrl, match="private"):
        await check_url("http://10.0.0.1/", loopback_only, DNS)


async def test_private_is_allowed_only_with_its_flag() -> None:
    private_only = EgressPolicy(allow_private=True)
    assert (await check_url("http://internal.example.com/", private_only, DNS)).port == 80
    with pytest.raises(UnsafeUrl, match="loopback"):
        await check_url("http://127.0.0.1/", private_only, DNS)


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://0.0.0.0/", "http://224.0.0.1/"])
async def test_lab_flags_never_open_metadata_unspecified_or_multicast(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_url(url, LAB, DNS)


async def test_pbx_addresses_are_refused_even_in_the_lab() -> None:
    policy = EgressPolicy(
        allow_loopback=True,
        allow_private=True,
        blocked=(NetworkTarget.parse("10.0.0.5"), NetworkTarget.parse("127.0.0.1", port=8088)),
    )
    with pytest.raises(UnsafeUrl, match="PBX"):
        await check_url("http://10.0.0.5:5038/", policy, DNS)
    with pytest.raises(UnsafeUrl, match="PBX"):
        await check_url("http://[::ffff:10.0.0.5]/", policy, DNS)
    with pytest.raises(UnsafeUrl, match="PBX"):
        await check_url("http://127.0.0.1:8088/ari/channels", policy, DNS)
    # another port on the same host is only a loopback question
    assert (await check_url("http://127.0.0.1:9000/hook", policy, DNS)).port == 9000


async def test_refusal_message_never_contains_credentials_or_query() -> None:
    with pytest.raises(UnsafeUrl) as caught:
        await check_url("http://10.0.0.1/hook?token=s3cret", PRODUCTION, DNS)
    assert "s3cret" not in str(caught.value)
    with pytest.raises(UnsafeUrl) as caught:
        await check_url("http://admin:hunter2@hooks.example.com/", PRODUCTION, DNS)
    assert "hunter2" not in str(caught.value)


def test_redact_strips_userinfo_query_and_fragment() -> None:
    assert redact("https://u:p@h.example.com/a?b=c#d") == "https://h.example.com/a"


async def test_guarded_resolver_checks_each_connection_dns_rebinding() -> None:
    dns = FakeDns({"rebind.example.com": ["93.184.216.34"]})
    resolver = GuardedResolver(PRODUCTION, dns)
    first = await resolver.resolve("rebind.example.com", 443, socket.AF_INET)
    assert [r["host"] for r in first] == ["93.184.216.34"]
    assert first[0]["port"] == 443
    dns.table["rebind.example.com"] = ["127.0.0.1"]
    with pytest.raises(UnsafeUrl, match="loopback"):
        await resolver.resolve("rebind.example.com", 443, socket.AF_INET)
    assert len(dns.lookups) == 2
    await resolver.close()


async def test_guarded_resolver_reports_ipv6_family() -> None:
    resolver = GuardedResolver(PRODUCTION, DNS)
    results = await resolver.resolve("v6.example.com", 80)
    assert results[0]["family"] == socket.AF_INET6


async def test_what_is_kept_per_address_or_host_still_follows_each_policy() -> None:
    """An address's kind and a host's parse are kept between checks; the verdict is still the
    policy's, every time, and the DNS is still asked at every check."""
    loopback_only = EgressPolicy(allow_loopback=True)
    blocking = EgressPolicy(allow_loopback=True, blocked=(NetworkTarget.parse("127.0.0.1"),))
    dns = FakeDns({"local.example.com": ["127.0.0.1"]})
    for _ in range(2):
        assert (await check_url("http://local.example.com/", loopback_only, dns)).port == 80
        with pytest.raises(UnsafeUrl, match="loopback"):
            await check_url("http://local.example.com/", PRODUCTION, dns)
        with pytest.raises(UnsafeUrl, match="PBX"):
            await check_url("http://local.example.com/", blocking, dns)
        with pytest.raises(UnsafeUrl, match="non-canonical"):
            await check_url("http://0x7f.1/", loopback_only, dns)
    assert len(dns.lookups) == 6


def test_a_malformed_host_is_whitespace_a_control_character_or_a_zone() -> None:
    """The host check's pattern refuses exactly what ``str.isspace``, the characters up to the
    space and ``%`` are, over every code point."""
    from voicedock.domain.webhooks import _MALFORMED_HOST

    for code in range(0x110000):
        ch = chr(code)
        expected = ch.isspace() or code < 0x21 or ch == "%"
        assert bool(_MALFORMED_HOST.search(ch)) == expected, hex(code)
