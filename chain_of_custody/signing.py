"""ECDSA P-384 signatures over exact bytes, checkable with stock OpenSSL.

A signature is DER-encoded ECDSA with SHA-256 over the bytes as stored, so an examiner
without this toolkit can check a manifest with::

    openssl dgst -sha256 -verify pub.pem -signature manifest.json.sig manifest.json

Keys are identified by their fingerprint: the hex SHA-256 of the DER SubjectPublicKeyInfo
(the same bytes ``openssl pkey -pubin -outform DER | sha256sum`` hashes).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chain_of_custody.errors import SigningKeyError

__all__ = [
    "ALGORITHM",
    "Signer",
    "encrypt_private_key",
    "fingerprint_of",
    "fingerprint_of_key_file",
    "generate_private_key",
    "load_private_key",
    "load_public_key",
    "normalize_fingerprint",
    "public_key_pem_of",
    "verify_signature",
]

ALGORITHM = "ECDSA-P384-SHA256"

_ENCRYPTED_PEM_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def _signature_algorithm() -> ec.ECDSA:
    return ec.ECDSA(hashes.SHA256())


@dataclass(frozen=True)
class Signer:
    """An operator's private key, ready to sign."""

    operator: str
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not self.operator.strip():
            raise ValueError("a signer needs a non-empty operator name")
        if not isinstance(self.private_key.curve, ec.SECP384R1):
            raise ValueError(f"signing keys must be P-384, not {self.private_key.curve.name}")

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA-SHA256 signature over exactly ``data``."""
        return self.private_key.sign(data, _signature_algorithm())

    @property
    def public_key_pem(self) -> str:
        """The public key as SubjectPublicKeyInfo PEM text."""
        return public_key_pem_of(self.private_key.public_key())

    @property
    def fingerprint(self) -> str:
        """Hex SHA-256 of the DER SubjectPublicKeyInfo."""
        return fingerprint_of(self.private_key.public_key())


def generate_private_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-384 private key."""
    return ec.generate_private_key(ec.SECP384R1())


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, passphrase: str) -> bytes:
    """``key`` as passphrase-encrypted PKCS#8 PEM."""
    if not passphrase:
        raise SigningKeyError("the passphrase must not be empty")
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.BestAvailableEncryption(passphrase.encode("utf-8")),
    )


def load_private_key(pem: bytes, passphrase: str) -> ec.EllipticCurvePrivateKey:
    """Decrypt a PKCS#8 PEM key written by :func:`encrypt_private_key`.

    Raises SigningKeyError with a one-line message if the passphrase is wrong, the key is
    stored unencrypted, or it is not a P-384 key.
    """
    if _ENCRYPTED_PEM_HEADER not in pem:
        # A signing key lying around unencrypted is a finding in itself; do not use it.
        raise SigningKeyError(
            "the signing key file is not an encrypted PKCS#8 key",
            hint="create a new key with `osint-capture keys init --operator NAME`",
        )
    if not passphrase:
        raise SigningKeyError("no passphrase given for the signing key")
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # OpenSSL cannot tell a wrong passphrase from a damaged file: the decryption
        # fails either way, and a wrong passphrase is by far the likelier cause.
        raise SigningKeyError(
            "wrong passphrase for the signing key (or the key file is damaged)"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP384R1):
        raise SigningKeyError("the signing key is not an ECDSA P-384 key")
    return key


def load_public_key(pem: str | bytes) -> ec.EllipticCurvePublicKey:
    """Parse a SubjectPublicKeyInfo PEM public key; it must be P-384.

    Raises ValueError if the text is not such a key.
    """
    data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve public key")
    if not isinstance(key.curve, ec.SECP384R1):
        raise ValueError(f"public key is on curve {key.curve.name}, not P-384")
    return key


def public_key_pem_of(public_key: ec.EllipticCurvePublicKey) -> str:
    """SubjectPublicKeyInfo PEM text of ``public_key``."""
    return public_key.public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def fingerprint_of(public_key: ec.EllipticCurvePublicKey) -> str:
    """Hex SHA-256 of the DER SubjectPublicKeyInfo of ``public_key``."""
    der = public_key.public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as typed by a person (any case, ``:`` or spaces) in canonical hex form.

    Raises ValueError if it is not 64 hex digits.
    """
    cleaned = "".join(text.split()).replace(":", "").lower()
    if len(cleaned) != 64 or any(ch not in string.hexdigits for ch in cleaned):
        raise ValueError(f"not a SHA-256 key fingerprint (64 hex digits): {text!r}")
    return cleaned


def verify_signature(public_key_pem: str | bytes, data: bytes, signature: bytes) -> bool:
    """True only if ``signature`` is a valid P-384 ECDSA-SHA256 signature over ``data``.

    Never raises for bad input: a malformed key, a key on another curve or a malformed
    signature are all simply "does not verify".
    """
    try:
        key = load_public_key(public_key_pem)
        key.verify(signature, data, _signature_algorithm())
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def fingerprint_of_key_file(path: str) -> str:
    """The fingerprint of the public key in a PEM file (as ``keys export`` writes it).

    Raises ValueError naming the file when it cannot be read or holds no P-384 public key.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(1 << 16)
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return fingerprint_of(load_public_key(data))
    except ValueError as exc:
        raise ValueError(f"{path} is not a P-384 public key in PEM form ({exc})") from None
