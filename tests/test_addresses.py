"""Tests for osint_capture.lawful.addresses.

Every address below is data only: nothing here resolves names via DNS or opens a
connection. Name resolution goes through injected fake resolvers, and an autouse
fixture makes any accidental use of the real resolver fail the test.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import pytest

from chain_of_custody.errors import EXIT_REFUSED, CaptureFailed, Refused, UsageError
from osint_capture.lawful.addresses import (
    AddressVerdict,
    check_public,
    classify_ip,
    parse_host_literal,
    resolve_and_classify,
    url_host_port,
)


@pytest.fixture(autouse=True)
def _no_real_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    # Belt and braces: a test that forgets to inject a resolver must fail, not query DNS.
    def forbidden(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"real name resolution attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", forbidden)
    monkeypatch.setattr(socket, "gethostbyname", forbidden)


class _FakeResolver:
    """Answers from a fixed table and records every lookup it is asked for."""

    def __init__(self, table: dict[str, Sequence[str]]) -> None:
        self.table = table
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append((host, port))
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.table[host]


# (spelling, expected public, substring of the reason)
ADDRESS_TABLE: list[tuple[str, bool, str]] = [
    # RFC 1918 and its edges
    ("10.0.0.0", False, "private (RFC 1918, 10.0.0.0/8)"),
    ("10.1.2.3", False, "RFC 1918"),
    ("10.255.255.255", False, "RFC 1918"),
    ("9.255.255.255", True, "public"),
    ("11.0.0.0", True, "public"),
    ("172.15.255.255", True, "public"),
    ("172.16.0.0", False, "private (RFC 1918, 172.16.0.0/12)"),
    ("172.20.1.1", False, "RFC 1918"),
    ("172.31.255.255", False, "RFC 1918"),
    ("172.32.0.0", True, "public"),
    ("192.167.255.255", True, "public"),
    ("192.168.0.0", False, "private (RFC 1918, 192.168.0.0/16)"),
    ("192.168.1.1", False, "RFC 1918"),
    ("192.168.255.255", False, "RFC 1918"),
    ("192.169.0.0", True, "public"),
    # link-local and cloud metadata
    ("169.254.169.254", False, "cloud metadata 169.254.169.254"),
    ("169.254.0.1", False, "link-local"),
    # CGNAT edges
    ("100.63.255.255", True, "public"),
    ("100.64.0.0", False, "shared address space / CGNAT (100.64.0.0/10)"),
    ("100.100.100.100", False, "CGNAT"),
    ("100.127.255.255", False, "CGNAT"),
    ("100.128.0.0", True, "public"),
    # loopback, unspecified, this-network
    ("127.0.0.1", False, "loopback (127.0.0.0/8)"),
    ("127.255.255.254", False, "loopback"),
    ("0.0.0.0", False, "unspecified"),
    ("0.1.2.3", False, "this network"),
    # numeric spellings the browser accepts for loopback
    ("127.1", False, "loopback"),
    ("127.0.1", False, "loopback"),
    ("2130706433", False, "loopback"),
    ("0x7f.0.0.1", False, "loopback"),
    ("0X7F.0.0.1", False, "loopback"),
    ("0x7f000001", False, "loopback"),
    ("0x7F.1", False, "loopback"),
    ("017700000001", False, "loopback"),
    ("0177.0.0.1", False, "loopback"),
    ("0177.0.0.01", False, "loopback"),
    ("127.0.0.1.", False, "loopback"),
    ("127.000.000.001", False, "loopback"),
    ("%31%32%37.0.0.1", False, "loopback"),
    ("\uff11\uff12\uff17.\uff10.\uff10.\uff11", False, "loopback"),
    ("127\u30020\u30020\u30021", False, "loopback"),
    ("0", False, "unspecified"),
    ("0x", False, "unspecified"),
    ("0xa.0x0.0.1", False, "RFC 1918"),
    ("167772161", False, "RFC 1918"),
    ("0xa9fea9fe", False, "cloud metadata"),
    ("2852039166", False, "cloud metadata"),
    ("3232235777", False, "RFC 1918"),
    # multicast, broadcast, reserved
    ("224.0.0.1", False, "multicast"),
    ("239.255.255.250", False, "multicast"),
    ("255.255.255.255", False, "broadcast"),
    ("240.0.0.1", False, "reserved (240.0.0.0/4)"),
    ("4294967295", False, "broadcast"),
    # documentation, benchmarking, IETF
    ("192.0.2.1", False, "documentation"),
    ("198.51.100.7", False, "documentation"),
    ("203.0.113.9", False, "documentation"),
    ("198.18.0.1", False, "benchmarking"),
    ("198.19.255.255", False, "benchmarking"),
    ("198.20.0.0", True, "public"),
    ("192.0.0.8", False, "IETF protocol assignments"),
    ("192.0.0.9", False, "IETF protocol assignments"),
    ("192.88.99.1", False, "6to4 relay"),
    # public IPv4 (data only)
    ("8.8.8.8", True, "public"),
    ("1.1.1.1", True, "public"),
    ("134744072", True, "public"),
    ("0x8.0x8.0x8.0x8", True, "public"),
    # IPv6 basics
    ("::1", False, "loopback (::1)"),
    ("[::1]", False, "loopback"),
    ("[0:0:0:0:0:0:0:1]", False, "loopback"),
    ("::", False, "unspecified (::)"),
    ("[::]", False, "unspecified"),
    ("fe80::1", False, "link-local (fe80::/10)"),
    ("fe80::1%eth0", False, "link-local"),
    ("[fe80::1%25eth0]", False, "link-local"),
    ("febf::1", False, "link-local"),
    ("fec0::1", False, "site-local"),
    ("fc00::1", False, "unique-local IPv6 (fc00::/7)"),
    ("fd12:3456::1", False, "unique-local"),
    ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", False, "unique-local"),
    ("ff02::1", False, "multicast"),
    ("2001:db8::1", False, "documentation (2001:db8::/32)"),
    ("3fff::1", False, "documentation"),
    ("100::1", False, "discard-only"),
    ("2001:2::1", False, "benchmarking"),
    ("64:ff9b:1::1", False, "local-use NAT64"),
    ("4000::1", False, "reserved"),
    # IPv6 forms that embed an IPv4 address: the IPv4 address decides
    ("::ffff:127.0.0.1", False, "IPv4-mapped"),
    ("::ffff:127.0.0.1", False, "loopback"),
    ("[::ffff:7f00:1]", False, "loopback"),
    ("::ffff:10.0.0.1", False, "RFC 1918"),
    ("::ffff:169.254.169.254", False, "cloud metadata"),
    ("::ffff:8.8.8.8", True, "public"),
    ("::ffff:0:10.0.0.1", False, "IPv4-translated"),
    ("::127.0.0.1", False, "IPv4-compatible"),
    ("::2", False, "this network"),
    ("64:ff9b::a00:1", False, "NAT64"),
    ("64:ff9b::a00:1", False, "RFC 1918"),
    ("64:ff9b::7f00:1", False, "loopback"),
    ("64:ff9b::808:808", True, "public"),
    ("2002:a00:1::1", False, "6to4"),
    ("2002:a00:1::1", False, "RFC 1918"),
    ("2002:7f00:1::", False, "loopback"),
    ("2002:808:808::1", True, "public"),
    # Teredo: server 65.54.227.120, client ~0x3ffffdd2 = 192.0.2.45 (documentation)
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False, "Teredo"),
    # client ~0xf5fffffe = 10.0.0.1
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False, "RFC 1918"),
    # client ~0xf7f7f7f7 = 8.8.8.8, server public too
    ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", True, "public"),
    # public IPv6 (data only)
    ("2606:4700:4700::1111", True, "public"),
    ("[2606:4700:4700::1111]", True, "public"),
    ("2001:4860:4860::8888", True, "public"),
]


@pytest.mark.parametrize(("spelling", "public", "reason"), ADDRESS_TABLE)
def test_address_table(spelling: str, public: bool, reason: str) -> None:
    ip = parse_host_literal(spelling)
    assert ip is not None
    verdict = classify_ip(ip)
    assert verdict.public is public
    assert reason in verdict.reason
    # The string form of classify_ip takes the same spellings.
    assert classify_ip(spelling) == verdict


@pytest.mark.parametrize(("spelling", "public", "reason"), ADDRESS_TABLE)
def test_address_table_through_check_public(spelling: str, public: bool, reason: str) -> None:
    resolver = _FakeResolver({})
    if public:
        verdicts = check_public(spelling, 443, allow_private=False, resolver=resolver)
        assert [v.public for v in verdicts] == [True]
    else:
        with pytest.raises(Refused) as excinfo:
            check_public(spelling, 443, allow_private=False, resolver=resolver)
        assert reason in excinfo.value.message
    assert resolver.calls == []


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("  127.0.0.1\n", "127.0.0.1"),
        ("12\t7.0.0.1", "127.0.0.1"),
        ("1.2.3", "1.2.0.3"),
        ("1.16777215", "1.255.255.255"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
        ("[FE80::1%25eth0]", "fe80::1%eth0"),
        ("fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_parse_host_literal_spellings(spelling: str, expected: str) -> None:
    # Compare objects, not text: Python 3.13 changed how IPv4-mapped addresses print.
    assert parse_host_literal(spelling) == ipaddress.ip_address(expected)


def test_parse_host_literal_returns_address_objects() -> None:
    assert parse_host_literal("127.1") == ipaddress.IPv4Address("127.0.0.1")
    assert parse_host_literal("[::1]") == ipaddress.IPv6Address("::1")


@pytest.mark.parametrize(
    "hostname",
    [
        "example.com",
        "EXAMPLE.com.",
        "localhost",
        "foo.localhost",
        "a1.b2",
        "1.2.3.4.example.com",
        "0x7f.example",
        "xn--bcher-kva.example",
        "b\u00fccher.example",
        "127.0.0.1..",  # last label empty after one trailing dot: a (useless) name
        "1e10",
        "0xg",
    ],
)
def test_hostnames_are_not_literals(hostname: str) -> None:
    assert parse_host_literal(hostname) is None


@pytest.mark.parametrize(
    "host",
    [
        "1.2.3.256",
        "256.0.0.1",
        "1.2.3.4.5",
        "4294967296",
        "0x100000000",
        "0x100.1",
        "1.16777216",
        "08.0.0.1",
        "0x7g.0.0.1",
        "1..2",
        "example.123",
        "foo.0x1",
        "[::1",
        "[not-ipv6]",
        "::ffff:0177.0.0.1",
        "1:2",
        "exa mple.com",
        "example.com/path",
        "user@example.com",
        "%zz.example",
        "",
        "   ",
    ],
)
def test_invalid_numeric_hosts(host: str) -> None:
    with pytest.raises(UsageError):
        parse_host_literal(host)


def test_classify_ip_rejects_hostnames() -> None:
    with pytest.raises(UsageError):
        classify_ip("example.com")


def test_verdict_is_frozen_and_normalised() -> None:
    verdict = classify_ip("0x7f.1")
    assert verdict == AddressVerdict("127.0.0.1", False, "loopback (127.0.0.0/8)")
    with pytest.raises(AttributeError):
        verdict.public = True  # type: ignore[misc]
    # The zone id chooses an interface; the verdict names the address itself.
    assert classify_ip("fe80::1%eth0").address == "fe80::1"
    assert classify_ip("8.8.8.8") == AddressVerdict("8.8.8.8", True, "public")


# --- resolution ----------------------------------------------------------------


def test_resolve_literal_does_not_call_resolver() -> None:
    resolver = _FakeResolver({})
    verdicts = resolve_and_classify("0x7f.1", 80, resolver=resolver)
    assert [v.address for v in verdicts] == ["127.0.0.1"]
    assert resolver.calls == []


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "localhost.", "foo.localhost", "a.b.LocalHost."]
)
def test_localhost_is_loopback_without_resolving(host: str) -> None:
    resolver = _FakeResolver({host.lower(): ["8.8.8.8"]})
    verdicts = resolve_and_classify(host, 80, resolver=resolver)
    assert resolver.calls == []
    assert {v.address for v in verdicts} == {"127.0.0.1", "::1"}
    assert all(not v.public and "loopback" in v.reason for v in verdicts)
    with pytest.raises(Refused):
        check_public(host, 80, allow_private=False, resolver=resolver)


def test_resolve_classifies_every_address_in_order() -> None:
    resolver = _FakeResolver(
        {"example.test": ["8.8.8.8", "2606:4700:4700::1111", "8.8.8.8", "10.1.2.3"]}
    )
    verdicts = resolve_and_classify("example.test", 8443, resolver=resolver)
    assert resolver.calls == [("example.test", 8443)]
    assert [(v.address, v.public) for v in verdicts] == [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("10.1.2.3", False),
    ]


def test_resolver_receives_normalised_name() -> None:
    resolver = _FakeResolver({"example.test": ["1.1.1.1"]})
    resolve_and_classify("EXAMPLE.%74est", 80, resolver=resolver)
    assert resolver.calls == [("example.test", 80)]


def test_mixed_public_and_private_is_refused() -> None:
    resolver = _FakeResolver({"mixed.test": ["1.1.1.1", "10.1.2.3"]})
    with pytest.raises(Refused) as excinfo:
        check_public("mixed.test", 443, allow_private=False, resolver=resolver)
    error = excinfo.value
    assert error.exit_code == EXIT_REFUSED
    assert "mixed.test resolves to 10.1.2.3, private (RFC 1918" in error.message
    assert "only public addresses may be captured" in error.message
    assert "1.1.1.1" not in error.message
    assert error.hint == "use --allow-private-network for lab and test use only"


def test_refusal_lists_every_non_public_address() -> None:
    resolver = _FakeResolver({"lab.test": ["127.0.0.1", "fd12:3456::1"]})
    with pytest.raises(Refused) as excinfo:
        check_public("lab.test", 443, allow_private=False, resolver=resolver)
    assert "127.0.0.1, loopback" in excinfo.value.message
    assert "fd12:3456::1, unique-local" in excinfo.value.message


def test_allow_private_returns_verdicts() -> None:
    resolver = _FakeResolver({"mixed.test": ["1.1.1.1", "10.1.2.3"]})
    verdicts = check_public("mixed.test", 443, allow_private=True, resolver=resolver)
    assert [v.public for v in verdicts] == [True, False]


def test_all_public_passes() -> None:
    resolver = _FakeResolver({"public.test": ["8.8.8.8", "2001:4860:4860::8888"]})
    verdicts = check_public("public.test", 443, allow_private=False, resolver=resolver)
    assert all(v.public for v in verdicts)


def test_resolver_answer_is_parsed_strictly() -> None:
    # Resolver output is a numeric address or nothing: "127.1" here is a bug, not a name.
    resolver = _FakeResolver({"odd.test": ["127.1"]})
    with pytest.raises(CaptureFailed):
        resolve_and_classify("odd.test", 80, resolver=resolver)


def test_unresolvable_name_is_capture_failed() -> None:
    with pytest.raises(CaptureFailed) as excinfo:
        resolve_and_classify("nxdomain.test", 80, resolver=_FakeResolver({}))
    assert "nxdomain.test" in excinfo.value.message


def test_empty_answer_is_capture_failed() -> None:
    with pytest.raises(CaptureFailed):
        resolve_and_classify("empty.test", 80, resolver=_FakeResolver({"empty.test": []}))


def test_default_resolver_uses_getaddrinfo_all_families(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, int, dict[str, object]]] = []

    def fake_getaddrinfo(host: str, port: int, **kwargs: object) -> list[object]:
        seen.append((host, port, kwargs))
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("8.8.8.8", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1%eth0", port, 0, 2)),
        ]

    # Replaces the autouse guard for this test only; still no real lookup happens.
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    verdicts = resolve_and_classify("dual.test", 443)
    assert len(seen) == 1
    host, port, kwargs = seen[0]
    assert (host, port) == ("dual.test", 443)
    assert kwargs.get("family", socket.AF_UNSPEC) == socket.AF_UNSPEC
    assert [(v.address, v.public) for v in verdicts] == [("8.8.8.8", True), ("fe80::1", False)]


# --- URLs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com/", ("example.com", 80)),
        ("https://example.com", ("example.com", 443)),
        ("HTTPS://Example.COM/Path", ("example.com", 443)),
        ("https://example.com:8443/x?y#z", ("example.com", 8443)),
        ("http://example.com:80/", ("example.com", 80)),
        ("http://example.com:/", ("example.com", 80)),
        ("https://example.com:0443/", ("example.com", 443)),
        ("http://user:secret@example.com:8080/", ("example.com", 8080)),
        ("http://user@example.com/", ("example.com", 80)),
        ("http://example.com@127.0.0.1/", ("127.0.0.1", 80)),
        ("http://a@b@c.example/", ("c.example", 80)),
        # The browser treats "\" as "/", so the host here is 127.0.0.1, not example.com.
        ("http://127.0.0.1\\@example.com/", ("127.0.0.1", 80)),
        ("http://example.com\\@127.0.0.1/", ("example.com", 80)),
        ("http:example.com/", ("example.com", 80)),
        # Special schemes skip any run of slashes: the browser's host here is "path".
        ("http:///path", ("path", 80)),
        ("http:\\\\example.com/", ("example.com", 80)),
        ("  http://exa\tmple.com/\n", ("example.com", 80)),
        ("http://[::1]:8080/", ("::1", 8080)),
        ("http://[::ffff:7f00:1]/", (str(ipaddress.IPv6Address("::ffff:7f00:1")), 80)),
        ("http://0x7f.1/", ("127.0.0.1", 80)),
        ("http://2130706433:8000/", ("127.0.0.1", 8000)),
        ("http://127.0.0.1./", ("127.0.0.1", 80)),
        ("wss://example.com/", ("example.com", 443)),
        ("http://example.com?q=@127.0.0.1", ("example.com", 80)),
        ("http://example.com#@127.0.0.1", ("example.com", 80)),
    ],
)
def test_url_host_port(url: str, expected: tuple[str, int]) -> None:
    assert url_host_port(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "example.com",
        "//example.com/",
        "http://",
        "https://user@/",
        "http://:80/",
        "file:///etc/passwd",
        "mailto:someone@example.com",
        "javascript:alert(1)",
        "http://example.com:99999/",
        "http://example.com:8o/",
        "http://example.com:-1/",
        "http://[::1/",
        "http://[::1]x/",
        "http://1.2.3.256/",
        "http://exa mple.com/",
    ],
)
def test_url_host_port_rejects(url: str) -> None:
    with pytest.raises(UsageError):
        url_host_port(url)
