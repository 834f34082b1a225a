"""The operator's signing key store.

One key per operator account, in :func:`key_dir` (``$OSINT_CAPTURE_KEY_DIR``, else the
platform's per-user config directory plus ``keys``):

* ``signing-key.pem`` — the P-384 private key as passphrase-encrypted PKCS#8, mode 0600;
* ``key.json`` — operator, fingerprint, created, algorithm and the public key, so the key
  can be identified and its public half exported without the passphrase.

The key folder must never be inside the evidence home (which may be a shared drive):
every path that makes or loads a signing key checks that here (:func:`check_key_location`),
so none can skip it. This module never prompts; the CLI passes a function that asks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from chain_of_custody.canonical import canonical_json
from chain_of_custody.durable import atomic_create_bytes, atomic_write_bytes
from chain_of_custody.errors import SigningKeyError, UsageError
from chain_of_custody.signing import (
    ALGORITHM,
    Signer,
    encrypt_private_key,
    fingerprint_of,
    generate_private_key,
    load_private_key,
    load_public_key,
    public_key_pem_of,
)
from chain_of_custody.timeutil import utc_now

__all__ = [
    "KEY_DIR_ENV",
    "KEY_INFO_NAME",
    "PASSPHRASE_ENV",
    "PRIVATE_KEY_NAME",
    "KeyInfo",
    "check_key_location",
    "export_public_key",
    "init_key",
    "key_dir",
    "key_info",
    "load_signer",
    "passphrase_from_env",
    "signer_for",
]

KEY_DIR_ENV = "OSINT_CAPTURE_KEY_DIR"
PASSPHRASE_ENV = "OSINT_CAPTURE_PASSPHRASE"
PRIVATE_KEY_NAME = "signing-key.pem"
KEY_INFO_NAME = "key.json"

_INIT_HINT = "run `osint-capture keys init --operator NAME`"


@dataclass(frozen=True)
class KeyInfo:
    """What is known about the stored key without its passphrase."""

    operator: str
    fingerprint: str
    created: str
    path: Path
    public_key_pem: str


def key_dir() -> Path:
    """``$OSINT_CAPTURE_KEY_DIR``, else ``<user config dir>/osint-capture/keys``."""
    override = os.environ.get(KEY_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir("osint-capture")) / "keys"


def check_key_location(evidence_home: Path) -> None:
    """Refuse a key folder inside the evidence home: keys never live with the evidence.

    Both are resolved with realpath, so "..", symbolic links and bind paths cannot hide
    the key inside the home.
    """
    home = Path(os.path.realpath(evidence_home))
    folder = Path(os.path.realpath(key_dir()))
    if folder == home or home in folder.parents:
        raise SigningKeyError(
            f"the signing key folder {folder} is inside the evidence home {home}",
            hint=f"keys never live with the evidence; set {KEY_DIR_ENV} elsewhere",
        )


def signer_for(evidence_home: Path, ask_passphrase: Callable[[KeyInfo], str]) -> Signer:
    """The operator's signer for work in ``evidence_home``.

    In order: the key folder is not inside the home; there is a key (else a hint naming
    ``keys init``); the passphrase comes from ``$OSINT_CAPTURE_PASSPHRASE`` or, when
    that is unset, from ``ask_passphrase`` (which may raise SigningKeyError).
    """
    check_key_location(evidence_home)
    info = key_info()
    passphrase = passphrase_from_env()
    if passphrase is None:
        passphrase = ask_passphrase(info)
    return load_signer(passphrase, evidence_home=evidence_home)


def passphrase_from_env() -> str | None:
    """``$OSINT_CAPTURE_PASSPHRASE``, or None if unset or empty (empty is never valid)."""
    return os.environ.get(PASSPHRASE_ENV) or None


def init_key(operator: str, passphrase: str, *, evidence_home: Path) -> KeyInfo:
    """Create the operator's signing key; refuses to replace an existing one.

    Raises SigningKeyError when the key folder is inside ``evidence_home`` or for an
    empty passphrase; UsageError naming the existing file, or for an empty operator name.
    """
    check_key_location(evidence_home)
    operator = operator.strip()
    if not operator:
        raise UsageError("the operator name must not be empty", hint="--operator NAME")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in operator):
        raise UsageError("the operator name must be a single line of text")
    if not passphrase:
        raise SigningKeyError("the passphrase must not be empty")
    directory = key_dir()
    key_path = directory / PRIVATE_KEY_NAME
    info_path = directory / KEY_INFO_NAME
    for path in (key_path, info_path):
        if os.path.lexists(path):
            raise UsageError(
                f"a signing key already exists at {path}; it is never overwritten",
                hint="move it away yourself if you really mean to replace it",
            )
    _make_private_dir(directory)

    private_key = generate_private_key()
    public_key = private_key.public_key()
    info = KeyInfo(
        operator=operator,
        fingerprint=fingerprint_of(public_key),
        created=utc_now(),
        path=key_path,
        public_key_pem=public_key_pem_of(public_key),
    )
    # Private key first: a crash in between leaves a key without key.json, which
    # key_info() reports, rather than a key.json describing a key that does not exist.
    _create_exclusive(key_path, encrypt_private_key(private_key, passphrase), 0o600)
    _create_exclusive(info_path, _info_document(info) + b"\n", 0o644)
    return info


def key_info() -> KeyInfo:
    """The stored key's description; SigningKeyError if there is no (usable) key."""
    directory = key_dir()
    key_path = directory / PRIVATE_KEY_NAME
    info_path = directory / KEY_INFO_NAME
    if not key_path.is_file():
        raise SigningKeyError(f"no signing key in {directory}", hint=_INIT_HINT)
    try:
        raw = json.loads(info_path.read_bytes())
        info = KeyInfo(
            operator=str(raw["operator"]),
            fingerprint=str(raw["fingerprint"]),
            created=str(raw["created"]),
            path=key_path,
            public_key_pem=str(raw["public_key"]),
        )
        actual = fingerprint_of(load_public_key(info.public_key_pem))
    except FileNotFoundError:
        raise SigningKeyError(
            f"{info_path} is missing, so the key in {key_path} cannot be identified",
            hint="restore key.json from your backup",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SigningKeyError(f"{info_path} is unreadable: {exc}") from None
    if actual != info.fingerprint:
        raise SigningKeyError(f"{info_path} is inconsistent: its fingerprint is not its key's")
    return info


def load_signer(passphrase: str | None, *, evidence_home: Path) -> Signer:
    """The stored key, decrypted, as a Signer for the recorded operator.

    ``passphrase`` None means ``$OSINT_CAPTURE_PASSPHRASE``. Raises SigningKeyError if
    the key folder is inside ``evidence_home``, there is no key, no passphrase, a wrong
    passphrase, or the key is not the one ``key.json`` describes.
    """
    check_key_location(evidence_home)
    info = key_info()
    if passphrase is None:
        passphrase = passphrase_from_env()
    if not passphrase:
        raise SigningKeyError(
            "no passphrase for the signing key",
            hint=f"set {PASSPHRASE_ENV} or enter it when asked",
        )
    try:
        pem = info.path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read {info.path}: {exc.strerror}") from None
    private_key = load_private_key(pem, passphrase)
    if fingerprint_of(private_key.public_key()) != info.fingerprint:
        raise SigningKeyError(
            f"{info.path} does not hold the key described in {KEY_INFO_NAME} "
            "(files from two different keys?)"
        )
    return Signer(operator=info.operator, private_key=private_key)


def export_public_key(out: Path) -> Path:
    """Write the public key (PEM) to ``out``, or into it if it is a directory; returns the file.

    This is the file an examiner gives ``openssl dgst -verify``.
    """
    info = key_info()
    target = out / f"osint-capture-{info.fingerprint[:16]}.pub.pem" if out.is_dir() else out
    data = info.public_key_pem.encode("ascii")
    try:
        atomic_write_bytes(target, data, 0o644)
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def _info_document(info: KeyInfo) -> bytes:
    return canonical_json(
        {
            "operator": info.operator,
            "fingerprint": info.fingerprint,
            "created": info.created,
            "algorithm": ALGORITHM,
            "public_key": info.public_key_pem,
        }
    )


def _make_private_dir(directory: Path) -> None:
    existed = directory.is_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not existed:
        # mkdir's mode is filtered by the umask; the key directory should be owner-only.
        directory.chmod(0o700)


def _create_exclusive(path: Path, data: bytes, mode: int) -> None:
    """Publish ``path`` complete or not at all, and never over an existing key."""
    try:
        atomic_create_bytes(path, data, mode)
    except FileExistsError:
        raise UsageError(
            f"a signing key already exists at {path}; it is never overwritten"
        ) from None
