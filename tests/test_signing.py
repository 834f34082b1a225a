"""Signatures must verify with stock OpenSSL, not only with our own code."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chain_of_custody.errors import SigningKeyError
from chain_of_custody.signing import (
    ALGORITHM,
    Signer,
    encrypt_private_key,
    fingerprint_of,
    generate_private_key,
    load_private_key,
    load_public_key,
    normalize_fingerprint,
    verify_signature,
)

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
needs_openssl = pytest.mark.skipif(not Path(OPENSSL).exists(), reason="openssl not installed")

DATA = '{"case_id":"CASE-1","text":"مرحبا 📸"}'.encode()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer(operator="DC Jane Doe", private_key=generate_private_key())


def _openssl_verify(pub: Path, sig: Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OPENSSL, "dgst", "-sha256", "-verify", str(pub), "-signature", str(sig), str(data)],
        capture_output=True,
        text=True,
        check=False,
    )


@needs_openssl
def test_openssl_verifies_our_signature(signer: Signer, tmp_path: Path) -> None:
    (tmp_path / "pub.pem").write_text(signer.public_key_pem)
    (tmp_path / "manifest.json").write_bytes(DATA)
    (tmp_path / "manifest.json.sig").write_bytes(signer.sign(DATA))
    result = _openssl_verify(
        tmp_path / "pub.pem", tmp_path / "manifest.json.sig", tmp_path / "manifest.json"
    )
    assert result.stdout.strip() == "Verified OK"
    assert result.returncode == 0


@needs_openssl
def test_openssl_rejects_tampered_data(signer: Signer, tmp_path: Path) -> None:
    (tmp_path / "pub.pem").write_text(signer.public_key_pem)
    (tmp_path / "manifest.json.sig").write_bytes(signer.sign(DATA))
    tampered = bytearray(DATA)
    tampered[5] ^= 0x01
    (tmp_path / "manifest.json").write_bytes(bytes(tampered))
    result = _openssl_verify(
        tmp_path / "pub.pem", tmp_path / "manifest.json.sig", tmp_path / "manifest.json"
    )
    assert "Verified OK" not in result.stdout
    assert "Verification failure" in result.stdout
    assert result.returncode == 1


@needs_openssl
def test_fingerprint_is_sha256_of_the_der_public_key_as_openssl_sees_it(
    signer: Signer, tmp_path: Path
) -> None:
    (tmp_path / "pub.pem").write_text(signer.public_key_pem)
    der = subprocess.run(
        [OPENSSL, "pkey", "-pubin", "-in", str(tmp_path / "pub.pem"), "-outform", "DER"],
        capture_output=True,
        check=True,
    ).stdout
    assert signer.fingerprint == hashlib.sha256(der).hexdigest()


@needs_openssl
def test_openssl_can_open_the_encrypted_key_with_the_passphrase(tmp_path: Path) -> None:
    key = generate_private_key()
    (tmp_path / "key.pem").write_bytes(encrypt_private_key(key, "correct horse"))
    result = subprocess.run(
        [
            OPENSSL,
            "pkey",
            "-in",
            str(tmp_path / "key.pem"),
            "-passin",
            "pass:correct horse",
            "-pubout",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert fingerprint_of(load_public_key(result.stdout)) == fingerprint_of(key.public_key())


def test_our_verifier_accepts_good_and_rejects_tampered(signer: Signer) -> None:
    signature = signer.sign(DATA)
    assert verify_signature(signer.public_key_pem, DATA, signature)
    assert verify_signature(signer.public_key_pem.encode(), DATA, signature)
    assert not verify_signature(signer.public_key_pem, DATA + b" ", signature)
    broken = bytearray(signature)
    broken[-1] ^= 0x01
    assert not verify_signature(signer.public_key_pem, DATA, bytes(broken))


def test_verifier_never_raises_on_garbage(signer: Signer) -> None:
    signature = signer.sign(DATA)
    assert not verify_signature("not a key", DATA, signature)
    assert not verify_signature(signer.public_key_pem, DATA, b"")
    assert not verify_signature(signer.public_key_pem, DATA, b"\x30\x02garbage")
    other = Signer(operator="someone else", private_key=generate_private_key())
    assert not verify_signature(other.public_key_pem, DATA, signature)


def test_verifier_rejects_keys_on_other_curves() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    signature = p256.sign(DATA, ec.ECDSA(hashes.SHA256()))
    pem = p256.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert not verify_signature(pem, DATA, signature)
    with pytest.raises(ValueError, match="P-384"):
        load_public_key(pem)
    with pytest.raises(ValueError, match="P-384"):
        Signer(operator="x", private_key=p256)


def test_signer_properties(signer: Signer) -> None:
    assert signer.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert len(signer.fingerprint) == 64
    assert signer.fingerprint == fingerprint_of(load_public_key(signer.public_key_pem))
    assert "private_key" not in repr(signer)
    assert ALGORITHM == "ECDSA-P384-SHA256"


def test_signer_needs_an_operator() -> None:
    with pytest.raises(ValueError, match="operator"):
        Signer(operator="  ", private_key=generate_private_key())


def test_encrypted_key_round_trip() -> None:
    key = generate_private_key()
    pem = encrypt_private_key(key, "correct horse battery staple")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    loaded = load_private_key(pem, "correct horse battery staple")
    assert fingerprint_of(loaded.public_key()) == fingerprint_of(key.public_key())


def test_wrong_passphrase_is_a_one_line_signing_key_error() -> None:
    pem = encrypt_private_key(generate_private_key(), "right")
    with pytest.raises(SigningKeyError) as caught:
        load_private_key(pem, "wrong")
    assert "wrong passphrase" in caught.value.message
    assert "\n" not in caught.value.one_line()


def test_unencrypted_keys_are_refused() -> None:
    pem = generate_private_key().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SigningKeyError, match="not an encrypted"):
        load_private_key(pem, "anything")


def test_empty_passphrase_is_refused() -> None:
    with pytest.raises(SigningKeyError, match="empty"):
        encrypt_private_key(generate_private_key(), "")


def test_normalize_fingerprint(signer: Signer) -> None:
    fp = signer.fingerprint
    spaced = ":".join(fp[i : i + 2] for i in range(0, 64, 2)).upper()
    assert normalize_fingerprint(spaced) == fp
    assert normalize_fingerprint(f"  {fp.upper()} ") == fp
    with pytest.raises(ValueError):
        normalize_fingerprint(fp[:-1])
    with pytest.raises(ValueError):
        normalize_fingerprint("g" * 64)
