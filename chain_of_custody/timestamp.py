"""RFC 3161 timestamps: read a TimeStampResp and check it against the data it stamps.

A Time-Stamping Authority the operator does not control signs that a hash existed at
its time (``genTime``). An item's stamp, ``manifest.json.sig.tsr``, covers the SHA-256 of
``manifest.json.sig``; a custody head's stamp (``custody.head.tsr`` in a bundle) covers
``custody.head``. Both are the whole TimeStampResp in DER, as the TSA sent it, so that
``openssl ts -verify -in X.tsr -data X -CAfile ROOT.pem`` checks it without this tool.

The ASN.1 and CMS work is rfc3161-client's (Trail of Bits, on cryptography). It reads
only strict DER, and ``openssl ts -reply`` (like other TSAs) writes the certificates a
reply carries in chain order, not in the sorted order DER asks of a SET OF: such a
reply is refused as unparsable. The certificates are not covered by the TSA's signature,
so the copy handed to the library has that one SET re-sorted (:func:`_der_sorted`); the
bytes stored and hashed are always the TSA's own.

Used by both verifiers (:mod:`chain_of_custody.verify`) and by the TSA client
(:mod:`cases.timestamping`), which vets every reply here before storing it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from rfc3161_client import (
    PKIStatus,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from chain_of_custody.custody import HEAD_NAME
from chain_of_custody.errors import IntegrityError, UsageError
from chain_of_custody.item import STAMP_NAME
from chain_of_custody.timeutil import format_utc

__all__ = [
    "HEAD_STAMP_NAME",
    "ITEM_STAMP_NAME",
    "SHA256_OID",
    "TSR_SUFFIX",
    "Stamp",
    "TimestampInvalid",
    "check_imprint",
    "load_certificates",
    "verify_stamp",
]

TSR_SUFFIX = ".tsr"
ITEM_STAMP_NAME = STAMP_NAME
HEAD_STAMP_NAME = HEAD_NAME + TSR_SUFFIX
SHA256_OID = "2.16.840.1.101.3.4.2.1"
# A stamp is a few kilobytes; anything much larger is not one, and is not parsed.
MAX_STAMP_BYTES = 1 << 20

Anchor = Literal["given roots", "certificates in the reply"]


class TimestampInvalid(IntegrityError):
    """A TimeStampResp that is not a valid stamp of the data: not granted, another
    imprint or nonce, a signature that does not verify, an untrusted certificate."""


@dataclass(frozen=True)
class Stamp:
    """What a verified stamp says, and what it was checked against."""

    gen_time: datetime
    serial_number: int
    policy: str
    nonce: int | None
    tsa: str  # the signing certificate's subject
    imprint_sha256: str
    anchor: Anchor

    @property
    def gen_time_text(self) -> str:
        return format_utc(self.gen_time)

    @property
    def serial_hex(self) -> str:
        return f"{self.serial_number:x}"


def load_certificates(
    paths: Sequence[str | Path], option: str = "--tsa-cert"
) -> tuple[x509.Certificate, ...]:
    """Every certificate in the PEM files named; UsageError naming a bad one."""
    certs: list[x509.Certificate] = []
    for path in paths:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise UsageError(f"{option} {path}: {exc.strerror or exc}") from None
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise UsageError(f"{option} {path}: no PEM certificate in it") from None
        certs.extend(found)
    return tuple(certs)


def verify_stamp(
    der: bytes,
    data: bytes,
    *,
    roots: Sequence[x509.Certificate] | None,
    nonce: int | None = None,
) -> Stamp:
    """Check the TimeStampResp ``der`` as a stamp of ``data``; return what it says.

    In order: the reply parses and is granted; its imprint is SHA-256 and equal to the
    SHA-256 of ``data``; its nonce is ``nonce`` (when the request's is known); the TSA's
    signature verifies and its certificate chains, at ``genTime``, to one of ``roots``
    and carries the critical extended key usage ``timeStamping``. Certificates in
    ``roots`` that are not self-signed (the TSA's own, an intermediate) help build the
    chain. With ``roots`` None the chain is checked to the self-signed certificates the
    reply itself carries — weaker: anyone can make such a reply — and the stamp says so.
    Raises TimestampInvalid saying what is wrong.
    """
    response = _granted_for(der, data)
    info = response.tst_info
    expected = hashlib.sha256(data).digest()
    if nonce is not None and info.nonce != nonce:
        raise TimestampInvalid(
            f"the reply's nonce {info.nonce} is not the request's ({nonce}): "
            "it answers another request"
        )
    embedded = [x509.load_der_x509_certificate(c) for c in response.signed_data.certificates]
    anchor: Anchor = "given roots"
    if roots is None:
        anchor = "certificates in the reply"
        trust = [c for c in embedded if _self_signed(c)]
        if not trust:
            raise TimestampInvalid(
                "the reply carries no root certificate to check its signature against",
                hint="give the TSA's root certificate with --tsa-root",
            )
        helpers: list[x509.Certificate] = []
    else:
        trust = [c for c in roots if _self_signed(c)]
        helpers = [c for c in roots if not _self_signed(c)]
        if not trust:
            raise TimestampInvalid("no root certificate was given to check the stamp against")
    signer = _signer_certificate(response, embedded, helpers)
    builder = VerifierBuilder(roots=trust, intermediates=[c for c in helpers if c != signer])
    if not embedded:
        # A reply without certificates (the TSA ignored certReq) is checked with the TSA
        # certificate given: the library needs it named.
        builder = builder.tsa_certificate(signer)
    try:
        builder.build().verify(response, expected)
    except VerificationError as exc:
        raise TimestampInvalid(_verification_problem(str(exc))) from None
    except ValueError as exc:
        raise TimestampInvalid(f"the stamp cannot be checked: {exc}") from None
    return Stamp(
        gen_time=info.gen_time.astimezone(UTC),
        serial_number=info.serial_number,
        policy=info.policy.dotted_string,
        nonce=info.nonce,
        tsa=signer.subject.rfc4514_string(),
        imprint_sha256=info.message_imprint.message.hex(),
        anchor=anchor,
    )


def check_imprint(der: bytes, data: bytes) -> None:
    """Check only what needs no certificate: the TimeStampResp ``der`` parses, is
    granted, and stamps the SHA-256 of ``data``. Raises TimestampInvalid. (Whether the
    TSA signed it, and is to be trusted, is :func:`verify_stamp`'s, given its root.)"""
    _granted_for(der, data)


def _granted_for(der: bytes, data: bytes) -> TimeStampResponse:
    response = _parse(der)
    # Compared as numbers: a status the library has no name for is refused, not raised.
    if response.status not in (PKIStatus.GRANTED.value, PKIStatus.GRANTED_WITH_MODS.value):
        said = "; ".join(response.status_string) or "no reason given"
        raise TimestampInvalid(
            f"the TSA did not grant the timestamp (status {response.status}: {said})"
        )
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm.dotted_string != SHA256_OID:
        raise TimestampInvalid(
            f"the stamp's imprint uses hash {imprint.hash_algorithm.dotted_string}, not SHA-256"
        )
    expected = hashlib.sha256(data).digest()
    if imprint.message != expected:
        raise TimestampInvalid(
            f"the stamp is for another imprint: it stamps SHA-256 {imprint.message.hex()}, "
            f"the data hashes to {expected.hex()}"
        )
    return response


def _parse(der: bytes) -> TimeStampResponse:
    if len(der) > MAX_STAMP_BYTES:
        raise TimestampInvalid(f"the stamp is {len(der)} bytes, too large for a TimeStampResp")
    try:
        return decode_timestamp_response(_der_sorted(der))
    except (ValueError, _DerError) as exc:
        raise TimestampInvalid(f"not an RFC 3161 TimeStampResp ({_first_line(str(exc))})") from None


def _signer_certificate(
    response: TimeStampResponse,
    embedded: Sequence[x509.Certificate],
    helpers: Sequence[x509.Certificate],
) -> x509.Certificate:
    """The certificate the SignerInfo names (issuer and serial), from the reply or given."""
    infos = list(response.signed_data.signer_infos)
    if len(infos) != 1:
        raise TimestampInvalid(f"the stamp has {len(infos)} signers, not one")
    info = infos[0]
    for cert in (*embedded, *helpers):
        if cert.issuer == info.issuer and cert.serial_number == info.serial_number:
            return cert
    raise TimestampInvalid(
        f"the TSA's certificate ({info.issuer.rfc4514_string()}, serial "
        f"{info.serial_number:x}) is neither in the reply nor among the certificates given",
        hint="give the TSA's certificate with its root",
    )


def _self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # another key type, a bad signature: not its own issuer
        return False
    return True


def _verification_problem(text: str) -> str:
    """The library's message (an OpenSSL error stack) as what a person can act on."""
    lowered = text.lower()
    if "certificate verify error" in lowered or "issuer certificate" in lowered:
        detail = text.split("Verify error: ")[-1].split('"')[0] if "Verify error" in text else ""
        return "the TSA's certificate does not chain to the trusted TSA roots" + (
            f" ({detail})" if detail else ""
        )
    if "signature failure" in lowered or "digest failure" in lowered:
        return "the TSA's signature does not verify (the stamp was altered or forged)"
    if "eku" in lowered:
        return f"the TSA's certificate may not sign timestamps: {_first_line(text)}"
    return f"the stamp does not verify: {_first_line(text)}"


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else text
    return line[:300]


# -- DER: re-sort the one SET OF the TSA may have written unsorted --------------------


class _DerError(ValueError):
    pass


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the element at ``at``."""
    if at + 2 > len(data):
        raise _DerError("truncated DER")
    tag, first = data[at], data[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or at + count > len(data):
            raise _DerError("unsupported DER length")
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > len(data):
        raise _DerError("truncated DER")
    return tag, at, at + length


def _children(data: bytes, start: int, end: int) -> list[bytes]:
    out = []
    while start < end:
        _, _, stop = _tlv(data, start)
        out.append(data[start:stop])
        start = stop
    return out


def _encode(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw + content


def _der_sorted(der: bytes) -> bytes:
    """``der`` with SignedData's ``certificates`` [0] in DER SET OF order.

    TimeStampResp ::= SEQUENCE { status, timeStampToken ContentInfo OPTIONAL };
    ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT SignedData };
    SignedData ::= SEQUENCE { version, digestAlgorithms, encapContentInfo,
    certificates [0] IMPLICIT OPTIONAL, crls [1] OPTIONAL, signerInfos }.
    Anything else is returned as it is, for the library to judge.
    """
    tag, start, end = _tlv(der, 0)
    if tag != 0x30 or end != len(der):
        return der
    resp = _children(der, start, end)
    if len(resp) < 2 or resp[1][0] != 0x30:
        return der
    token = resp[1]
    _, start, end = _tlv(token, 0)
    content_info = _children(token, start, end)
    if len(content_info) != 2 or content_info[1][0] != 0xA0:
        return der
    wrapper = content_info[1]
    _, start, end = _tlv(wrapper, 0)
    signed = wrapper[start:end]
    tag, start, end = _tlv(signed, 0)
    if tag != 0x30:
        return der
    fields = _children(signed, start, end)
    changed = False
    for index, element in enumerate(fields):
        if element[0] == 0xA0:
            _, cstart, cend = _tlv(element, 0)
            certs = _children(element, cstart, cend)
            ordered = sorted(certs)
            if ordered != certs:
                fields[index] = _encode(0xA0, b"".join(ordered))
                changed = True
    if not changed:
        return der
    new_signed = _encode(0x30, b"".join(fields))
    new_token = _encode(0x30, content_info[0] + _encode(0xA0, new_signed))
    return _encode(0x30, resp[0] + new_token + b"".join(resp[2:]))
