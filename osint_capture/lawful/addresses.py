"""Decide whether a capture target is on the public internet.

Department policy allows "lawful public-access methods" only, so a target whose
host resolves to a loopback, private, link-local, shared, reserved or otherwise
non-global address must be refused before any request is made.

Two rules shape everything here:

* Interpret hosts the way the browser will. An attacker-supplied URL such as
  ``http://0x7f.1/`` or ``http://2130706433/`` reaches 127.0.0.1 in Chromium, so
  the host is parsed with the WHATWG URL Standard's rules, not ``urllib``'s.
* Fail closed. Anything that looks numeric but is not a valid address, any name
  that does not resolve, and any resolver answer that is not an address is an
  error, never a silent "public".
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from encodings.idna import nameprep
from typing import TypeAlias

from chain_of_custody.errors import CaptureFailed, Refused, UsageError

__all__ = [
    "AddressVerdict",
    "check_public",
    "classify_ip",
    "parse_host_literal",
    "resolve_and_classify",
    "url_host_port",
]

_IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
_Resolver: TypeAlias = Callable[[str, int], Sequence[str]]

_PUBLIC = "public"
_REFUSAL_HINT = "use --allow-private-network for lab and test use only"


@dataclass(frozen=True)
class AddressVerdict:
    """One address a target host means, and whether policy lets us capture it."""

    address: str
    public: bool
    reason: str


# First match wins, so narrower blocks come before the blocks that contain them.
# ``ipaddress.is_global`` alone would do most of this, but its tables differ between
# Python releases (3.11.7 calls 192.0.0.9 and 3fff::/20 global) and it cannot say
# *why*, which an investigator reading a refusal needs.
_IPV4_TABLE: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), reason)
    for net, reason in (
        # Linux and macOS deliver connections to 0.0.0.0 to this machine.
        ("0.0.0.0/32", "unspecified (0.0.0.0, reaches this machine)"),
        ("0.0.0.0/8", '"this network" (0.0.0.0/8)'),
        ("10.0.0.0/8", "private (RFC 1918, 10.0.0.0/8)"),
        ("100.64.0.0/10", "shared address space / CGNAT (100.64.0.0/10)"),
        ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
        (
            "169.254.0.0/16",
            "link-local (169.254.0.0/16, includes cloud metadata 169.254.169.254)",
        ),
        ("172.16.0.0/12", "private (RFC 1918, 172.16.0.0/12)"),
        ("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
        ("192.0.2.0/24", "documentation (TEST-NET-1, 192.0.2.0/24)"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast (192.88.99.0/24)"),
        ("192.168.0.0/16", "private (RFC 1918, 192.168.0.0/16)"),
        ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
        ("198.51.100.0/24", "documentation (TEST-NET-2, 198.51.100.0/24)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3, 203.0.113.0/24)"),
        ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
        ("255.255.255.255/32", "broadcast (255.255.255.255)"),
        ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
    )
)

_IPV6_TABLE: tuple[tuple[ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified (::)"),
        ("::1/128", "loopback (::1)"),
        ("64:ff9b:1::/48", "local-use NAT64 (64:ff9b:1::/48)"),
        ("100::/64", "discard-only (100::/64)"),
        ("2001:2::/48", "benchmarking (2001:2::/48)"),
        ("2001:db8::/32", "documentation (2001:db8::/32)"),
        ("2001:10::/28", "deprecated ORCHID (2001:10::/28)"),
        ("2001::/23", "IETF protocol assignments (2001::/23)"),
        ("3fff::/20", "documentation (3fff::/20)"),
        ("5f00::/16", "segment routing SIDs (5f00::/16)"),
        ("fc00::/7", "unique-local IPv6 (fc00::/7)"),
        ("fe80::/10", "link-local (fe80::/10)"),
        ("fec0::/10", "deprecated site-local (fec0::/10)"),
        ("ff00::/8", "multicast (ff00::/8)"),
    )
)

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")

# IPv6 forms that carry an IPv4 address: traffic to them ends up at that IPv4
# address (directly, via a translator or via a tunnel), so the IPv4 address decides.
_NAT64_WKP = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _low32(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)


def _classify_v4(ip: ipaddress.IPv4Address) -> AddressVerdict:
    for net, reason in _IPV4_TABLE:
        if ip in net:
            return AddressVerdict(str(ip), False, reason)
    if not ip.is_global:
        # A block the table does not know yet; trust the standard library's list.
        return AddressVerdict(str(ip), False, "not globally routable")
    return AddressVerdict(str(ip), True, _PUBLIC)


def _embedded_v4(
    ip: ipaddress.IPv6Address,
) -> tuple[str, tuple[ipaddress.IPv4Address, ...]] | None:
    """The IPv4 address(es) an IPv6 address stands for, with a label for the form."""
    mapped = ip.ipv4_mapped
    if mapped is not None:
        return "IPv4-mapped IPv6 (::ffff:0:0/96)", (mapped,)
    if ip in _IPV4_TRANSLATED:
        return "IPv4-translated IPv6 (::ffff:0:0:0/96)", (_low32(ip),)
    if ip in _NAT64_WKP:
        return "NAT64 (64:ff9b::/96)", (_low32(ip),)
    # :: and ::1 lie inside ::/96 but are addresses in their own right.
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:
        return "IPv4-compatible IPv6 (::/96)", (_low32(ip),)
    if ip.sixtofour is not None:
        return "6to4 (2002::/16)", (ip.sixtofour,)
    teredo = ip.teredo
    if teredo is not None:
        server, client = teredo
        # The client is where the traffic goes; the server relays it. Either being
        # non-public means the address is not a plain public destination.
        return "Teredo (2001::/32)", (client, server)
    return None


def _classify_v6(ip: ipaddress.IPv6Address) -> AddressVerdict:
    # A zone id only picks an interface; it never changes what the address is.
    bare = ipaddress.IPv6Address(int(ip))
    text = str(bare)
    embedded = _embedded_v4(bare)
    if embedded is not None:
        label, inner_ips = embedded
        for inner_ip in inner_ips:
            inner = _classify_v4(inner_ip)
            if not inner.public:
                return AddressVerdict(text, False, f"{label} of {inner_ip}: {inner.reason}")
        return AddressVerdict(text, True, f"{_PUBLIC} ({label} of {inner_ips[0]})")
    for net, reason in _IPV6_TABLE:
        if bare in net:
            return AddressVerdict(text, False, reason)
    if bare not in _GLOBAL_UNICAST_V6:
        return AddressVerdict(text, False, "reserved (outside global unicast 2000::/3)")
    if not bare.is_global:
        return AddressVerdict(text, False, "not globally routable")
    return AddressVerdict(text, True, _PUBLIC)


def classify_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> AddressVerdict:
    """Say whether ``ip`` is a globally routable unicast address, and why not if not.

    A string may be any spelling :func:`parse_host_literal` accepts; a hostname
    raises :class:`UsageError` because only resolution can say what it means.
    """
    if isinstance(ip, str):
        parsed = parse_host_literal(ip)
        if parsed is None:
            raise UsageError(f"{ip!r} is a hostname, not an IP address")
        ip = parsed
    if isinstance(ip, ipaddress.IPv4Address):
        return _classify_v4(ip)
    return _classify_v6(ip)


# --- host parsing (WHATWG URL Standard, "host parser") ---------------------------

_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
# IDNA treats all of these as label separators, so ideographic full stops (U+3002)
# between "127", "0", "0" and "1" still spell 127.0.0.1.
_DOT_VARIANTS = re.compile("[.\u3002\uff0e\uff61]")
_FORBIDDEN_DOMAIN = re.compile(r"[\x00-\x20#/:<>?@\[\\\]^|%\x7f]")
_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_OCT_DIGITS = frozenset("01234567")


def _clean(host: str) -> str:
    # The URL Standard drops tabs and newlines anywhere and trims C0/space at the ends.
    return _TAB_OR_NEWLINE.sub("", host).strip(_C0_OR_SPACE)


def _map_label(label: str) -> str:
    if label.isascii():
        return label.lower()
    try:
        # Nameprep (IDNA 2003) is the stdlib's nearest thing to the UTS 46 mapping the
        # browser applies: it turns full-width digits into ASCII ones, which matters
        # because full-width "127.0.0.1" (U+FF11 U+FF12 U+FF17 ...) must be seen as
        # 127.0.0.1.
        return nameprep(label)
    except UnicodeError:
        return unicodedata.normalize("NFKC", label).casefold()


def _map_domain(domain: str) -> str:
    mapped = ".".join(_map_label(label) for label in _DOT_VARIANTS.split(domain))
    # A mapping may itself produce dots (U+2024 ONE DOT LEADER becomes "."); splitting
    # again later errs on the side of treating the result as a number.
    return _DOT_VARIANTS.sub(".", mapped)


def _parse_ipv4_number(part: str) -> int | None:
    """WHATWG "IPv4 number parser": decimal, 0x-hex or 0-octal; None on failure."""
    if not part:
        return None
    radix = 10
    if len(part) >= 2 and part[:2] in ("0x", "0X"):
        part, radix = part[2:], 16
    elif len(part) >= 2 and part[0] == "0":
        part, radix = part[1:], 8
    if not part:
        return 0
    allowed = {10: _DIGITS, 16: _HEX_DIGITS, 8: _OCT_DIGITS}[radix]
    if not set(part) <= allowed:
        return None
    return int(part, radix)


def _ends_in_a_number(domain: str) -> bool:
    parts = domain.split(".")
    if parts[-1] == "":
        if len(parts) == 1:
            return False
        parts.pop()
    last = parts[-1]
    if last and set(last) <= _DIGITS:
        return True
    return _parse_ipv4_number(last) is not None


def _parse_ipv4(domain: str) -> ipaddress.IPv4Address | None:
    """WHATWG "IPv4 parser"; None where the browser would reject the host."""
    parts = domain.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _parse_ipv4_number(part)
        if number is None:
            return None
        numbers.append(number)
    if any(n > 255 for n in numbers[:-1]):
        return None
    if numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number * 256 ** (3 - index)
    return ipaddress.IPv4Address(value)


def _parse_ipv6(text: str, original: str) -> ipaddress.IPv6Address:
    candidates = [text]
    if "%25" in text:
        # RFC 6874 writes the zone delimiter percent-encoded inside URLs. Try that
        # reading first: ipaddress would otherwise accept "25eth0" as the zone.
        candidates.insert(0, text.replace("%25", "%", 1))
    for candidate in candidates:
        try:
            return ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
    raise UsageError(f"{original!r} is not a valid IPv6 address")


def _parse_host(host: str) -> tuple[_IPAddress | None, str]:
    """(address or None, normalised host text) for a URL host or a bare address."""
    cleaned = _clean(host)
    if not cleaned:
        raise UsageError("the host is empty")
    if cleaned.startswith("["):
        if not cleaned.endswith("]"):
            raise UsageError(f"{host!r} has an unterminated IPv6 bracket")
        ip6 = _parse_ipv6(cleaned[1:-1], host)
        return ip6, str(ip6)
    domain = urllib.parse.unquote(cleaned, encoding="utf-8", errors="replace")
    if ":" in domain:
        # ":" cannot appear in a domain, so this is a bare IPv6 address or nothing.
        ip6 = _parse_ipv6(domain, host)
        return ip6, str(ip6)
    domain = _map_domain(domain)
    if not domain:
        raise UsageError(f"{host!r} is empty once normalised")
    if _FORBIDDEN_DOMAIN.search(domain):
        raise UsageError(f"{host!r} is not a valid host name")
    if _ends_in_a_number(domain):
        ip4 = _parse_ipv4(domain)
        if ip4 is None:
            # The browser refuses such a host; guessing it is a name could let a
            # numeric spelling we misread slip through to the resolver.
            raise UsageError(f"{host!r} looks numeric but is not a valid IPv4 address")
        return ip4, str(ip4)
    return None, domain


def parse_host_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host spelling denotes, or None when it is a hostname.

    Accepts every numeric form Chromium does (WHATWG URL Standard host parser):
    shortened ("127.1"), single-number ("2130706433"), hex ("0x7f.0.0.1"),
    octal ("0177.0.0.1"), a trailing dot, percent-encoding, full-width digits,
    bracketed or bare IPv6 with optional zone id. Raises :class:`UsageError` for a
    host the browser would reject, including numeric-looking hosts that are not
    valid IPv4 ("1.2.3.256", "example.123").
    """
    return _parse_host(host)[0]


# --- resolution and the policy check ---------------------------------------------


def _system_resolver(host: str, port: int) -> list[str]:
    # AF_UNSPEC and no AI_ADDRCONFIG: every address of every family counts, since the
    # browser may pick any of them.
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _is_localhost(domain: str) -> bool:
    name = domain.removesuffix(".")
    return name == "localhost" or name.endswith(".localhost")


def _strict_address(text: str, host: str) -> _IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise CaptureFailed(f"resolving {host} gave {text!r}, which is not an IP address") from None


def resolve_and_classify(
    host: str,
    port: int,
    *,
    resolver: _Resolver | None = None,
) -> tuple[AddressVerdict, ...]:
    """Classify every address ``host`` means, in resolver order, without duplicates.

    Literals are classified directly and "localhost" / "*.localhost" are loopback by
    definition (RFC 6761; Chromium never asks DNS about them). Everything else goes
    to ``resolver`` (default :func:`socket.getaddrinfo`). Raises
    :class:`CaptureFailed` when the name does not resolve.
    """
    literal, domain = _parse_host(host)
    if literal is not None:
        return (classify_ip(literal),)
    if _is_localhost(domain):
        return (
            classify_ip(ipaddress.IPv4Address("127.0.0.1")),
            classify_ip(ipaddress.IPv6Address("::1")),
        )
    resolve = resolver if resolver is not None else _system_resolver
    try:
        answers = resolve(domain, port)
    except (OSError, UnicodeError) as exc:
        raise CaptureFailed(
            f"{domain} does not resolve: {exc}",
            hint="check the spelling and the network connection",
        ) from exc
    verdicts: dict[str, AddressVerdict] = {}
    for answer in answers:
        verdict = classify_ip(_strict_address(answer, domain))
        verdicts.setdefault(verdict.address, verdict)
    if not verdicts:
        raise CaptureFailed(f"{domain} does not resolve: no addresses returned")
    return tuple(verdicts.values())


def check_public(
    host: str,
    port: int,
    *,
    allow_private: bool,
    resolver: _Resolver | None = None,
) -> tuple[AddressVerdict, ...]:
    """The verdicts for ``host``, or :class:`Refused` if any address is not public.

    One non-public address is enough: the browser may connect to any of them.
    """
    verdicts = resolve_and_classify(host, port, resolver=resolver)
    blocked = [v for v in verdicts if not v.public]
    if blocked and not allow_private:
        where = "; ".join(f"{v.address}, {v.reason}" for v in blocked)
        raise Refused(
            f"{_clean(host)} resolves to {where} — only public addresses may be captured",
            hint=_REFUSAL_HINT,
        )
    return verdicts


# --- URLs ------------------------------------------------------------------------

# The URL Standard's special schemes other than file, which has no network host.
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def _split_port(host_port: str, url: str) -> tuple[str, str]:
    if host_port.startswith("["):
        end = host_port.find("]")
        if end < 0:
            raise UsageError(f"{url!r} has an unterminated IPv6 bracket")
        host, rest = host_port[: end + 1], host_port[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UsageError(f"{url!r} has text after the IPv6 address")
        return host, rest[1:]
    host, _, port = host_port.partition(":")
    return host, port


def url_host_port(url: str) -> tuple[str, int]:
    """The host and port a browser would connect to for ``url``.

    Follows the URL Standard rather than :mod:`urllib.parse`, which disagrees on
    inputs such as ``http://127.0.0.1\\@example.com/`` (the browser goes to
    127.0.0.1; urllib says example.com). The host is normalised as the browser
    would: numeric IPv4 spellings become dotted quads, IPv6 loses its brackets,
    names are lower-cased. Raises :class:`UsageError` for a URL without a host,
    an unsupported scheme or a bad port.
    """
    cleaned = _clean(url)
    match = _SCHEME.match(cleaned)
    if match is None:
        raise UsageError(f"{url!r} is not an absolute URL", hint="e.g. https://example.com/")
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise UsageError(f"{url!r} has unsupported scheme {scheme!r}", hint="use http or https")
    # Special schemes ignore any run of slashes and backslashes before the authority,
    # and a backslash ends the authority just as "/" does.
    rest = cleaned[match.end() :].lstrip("/\\")
    authority = re.split(r"[/\\?#]", rest, maxsplit=1)[0]
    host_port = authority.rpartition("@")[2]
    host_text, port_text = _split_port(host_port, url)
    if not host_text:
        raise UsageError(f"{url!r} has no host")
    if port_text:
        if not set(port_text) <= _DIGITS:
            raise UsageError(f"{url!r} has an invalid port {port_text!r}")
        port = int(port_text)
        if port > 65535:
            raise UsageError(f"{url!r} has a port above 65535")
    else:
        port = _DEFAULT_PORTS[scheme]
    literal, domain = _parse_host(host_text)
    return (str(literal) if literal is not None else domain), port
