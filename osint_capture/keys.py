"""The operator's signing key store.

One key per operator account, in :func:`key_dir` (``$OSINT_CAPTURE_KEY_DIR``, else the
platform's per-user config directory plus ``keys``):

* ``signing-key.pem`` — the P-384 private key as passphrase-encrypted PKCS#8, mode 0600;
* ``key.json`` — operator, fingerprint, created, algorithm and the public key, so the key
  can be identified and its public half exported without the passphrase, plus
  ``signature``: the key's own signature over the canonical JSON of the other fields, so
  the operator name cannot be edited without it showing (:func:`key_info` checks it).
  A ``key.json`` written before the signature existed is accepted as *unbound* and is
  signed the first time :func:`load_signer` decrypts the key.

Like ssh, the key is refused (:class:`SigningKeyError` with the ``chmod`` that fixes it)
when the folder or ``key.json`` is writable by anyone but its owner, when
``signing-key.pem`` is open to anyone but its owner, is a symbolic link, or when any of
them belongs to another user. Every path that uses the key goes through
:func:`key_info`, which makes these checks.

The passphrase (``$OSINT_CAPTURE_PASSPHRASE``) and the key folder
(``$OSINT_CAPTURE_KEY_DIR``) are read once and taken out of the process environment
(:func:`take_secrets_from_environment`, the first thing the command line does), so that
no child process — Playwright's driver, Chromium, its crash reporter — ever holds them.

The key folder must never be inside the evidence home (which may be a shared drive):
every path that makes or loads a signing key checks that here (:func:`check_key_location`),
so none can skip it. This module never prompts; the CLI passes a function that asks.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from chain_of_custody.canonical import canonical_json
from chain_of_custody.durable import atomic_create_bytes, atomic_write_bytes
from chain_of_custody.errors import NoSigningKey, SigningKeyError, UsageError
from chain_of_custody.signing import (
    ALGORITHM,
    Signer,
    encrypt_private_key,
    fingerprint_of,
    generate_private_key,
    load_private_key,
    load_public_key,
    public_key_pem_of,
    verify_signature,
)
from chain_of_custody.timeutil import utc_now
from osint_capture.keyfiles import check_key_folder, read_key_file

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
    "take_secrets_from_environment",
    "using_key_dir",
]

KEY_DIR_ENV = "OSINT_CAPTURE_KEY_DIR"
PASSPHRASE_ENV = "OSINT_CAPTURE_PASSPHRASE"
PRIVATE_KEY_NAME = "signing-key.pem"
KEY_INFO_NAME = "key.json"

_INIT_HINT = "run `osint-capture keys init --operator NAME`"
_RESTORE_HINT = "restore key.json from your backup; it must never be edited by hand"
_SIGNATURE_FIELD = "signature"
_SECRET_VARIABLES = (PASSPHRASE_ENV, KEY_DIR_ENV)
# What take_secrets_from_environment() took out of os.environ; read instead of it.
_taken: dict[str, str] = {}


def take_secrets_from_environment() -> None:
    """Move the passphrase and the key folder out of ``os.environ`` into this module.

    Child processes inherit the environment (and a crashing Chromium writes it into its
    crash dumps), so the secret must be gone from it before any child starts.
    """
    for name in _SECRET_VARIABLES:
        value = os.environ.pop(name, None)
        if value is not None:
            _taken[name] = value


def _setting(name: str) -> str | None:
    value = _taken[name] if name in _taken else os.environ.get(name)
    return value or None


@contextlib.contextmanager
def using_key_dir(directory: Path) -> Iterator[None]:
    """Use ``directory`` as the key folder inside the block (the demo's throwaway key)."""
    previous = _taken.get(KEY_DIR_ENV)
    _taken[KEY_DIR_ENV] = str(directory)
    try:
        yield
    finally:
        if previous is None:
            _taken.pop(KEY_DIR_ENV, None)
        else:
            _taken[KEY_DIR_ENV] = previous


@dataclass(frozen=True)
class KeyInfo:
    """What is known about the stored key without its passphrase."""

    operator: str
    fingerprint: str
    created: str
    path: Path
    public_key_pem: str
    # True when key.json carries the key's signature over the operator name and the key
    # (always, for keys made by this version); False for a key.json from before that,
    # which load_signer() signs on first use.
    bound: bool


def key_dir() -> Path:
    """``$OSINT_CAPTURE_KEY_DIR``, else ``<user config dir>/osint-capture/keys``."""
    override = _setting(KEY_DIR_ENV)
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
    return _setting(PASSPHRASE_ENV)


def init_key(operator: str, passphrase: str, *, evidence_home: Path) -> KeyInfo:
    """Create the operator's signing key; refuses to replace an existing one.

    Raises SigningKeyError when the key folder is inside ``evidence_home``, is writable
    by others or not the user's own, or for an empty passphrase; UsageError naming the
    existing file, or for an empty operator name.
    """
    check_key_location(evidence_home)
    operator = operator.strip()
    if not operator:
        raise UsageError("the operator name must not be empty", hint="--operator NAME")
    if not _is_one_line(operator):
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
    # An existing folder others can write to would make the new key unusable (and
    # replaceable): refuse before creating anything in it.
    check_key_folder(directory)

    private_key = generate_private_key()
    public_key = private_key.public_key()
    info = KeyInfo(
        operator=operator,
        fingerprint=fingerprint_of(public_key),
        created=utc_now(),
        path=key_path,
        public_key_pem=public_key_pem_of(public_key),
        bound=True,
    )
    document = _signed_info_document(info, Signer(operator=operator, private_key=private_key))
    # Private key first: a crash in between leaves a key without key.json, which
    # key_info() reports, rather than a key.json describing a key that does not exist.
    _create_exclusive(key_path, encrypt_private_key(private_key, passphrase), 0o600)
    _create_exclusive(info_path, document, 0o644)
    return info


def key_info() -> KeyInfo:
    """The stored key's description; SigningKeyError if there is no (usable) key.

    Refuses a key folder, ``signing-key.pem`` or ``key.json`` that others could change
    (or read, for the private key), that belongs to another user, or a key file that is
    a symbolic link; and a ``key.json`` whose signature does not verify with the key it
    describes, so an edited operator name is caught without the passphrase.
    """
    return _load_key()[0]


def load_signer(passphrase: str | None, *, evidence_home: Path) -> Signer:
    """The stored key, decrypted, as a Signer for the recorded operator.

    ``passphrase`` None means ``$OSINT_CAPTURE_PASSPHRASE``. Raises SigningKeyError if
    the key folder is inside ``evidence_home``, for everything :func:`key_info` refuses,
    when there is no passphrase, a wrong passphrase, or the key is not the one
    ``key.json`` describes. A ``key.json`` from before operator names were signed is
    signed now, and rewritten atomically, binding its operator name to the key.
    """
    check_key_location(evidence_home)
    info, pem = _load_key()
    if passphrase is None:
        passphrase = passphrase_from_env()
    if not passphrase:
        raise NoSigningKey(
            "no passphrase for the signing key",
            hint=f"set {PASSPHRASE_ENV} or enter it when asked",
        )
    private_key = load_private_key(pem, passphrase)
    # key_info() checked that the fingerprint is that of key.json's public key and that
    # this public key signed key.json; the private key must be its private half.
    described = public_key_pem_of(load_public_key(info.public_key_pem))
    public_key = private_key.public_key()
    if fingerprint_of(public_key) != info.fingerprint or public_key_pem_of(public_key) != described:
        raise SigningKeyError(
            f"{info.path} does not hold the key described in {KEY_INFO_NAME} "
            "(files from two different keys?)"
        )
    signer = Signer(operator=info.operator, private_key=private_key)
    if not info.bound:
        _bind(info, signer)
    return signer


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


def _load_key() -> tuple[KeyInfo, bytes]:
    """The checked description of the stored key, and the encrypted private key's bytes.

    Both files are read through descriptors opened without following links and checked
    with fstat, so what is checked is what is read.
    """
    directory = key_dir()
    key_path = directory / PRIVATE_KEY_NAME
    info_path = directory / KEY_INFO_NAME
    try:
        check_key_folder(directory)
        pem = read_key_file(key_path, private=True)
    except FileNotFoundError:
        raise NoSigningKey(f"no signing key in {directory}", hint=_INIT_HINT) from None
    try:
        data = read_key_file(info_path, private=False)
    except FileNotFoundError:
        raise SigningKeyError(
            f"{info_path} is missing, so the key in {key_path} cannot be identified",
            hint="restore key.json from your backup",
        ) from None
    return _parse_info(data, info_path, key_path), pem


def _parse_info(data: bytes, info_path: Path, key_path: Path) -> KeyInfo:
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise TypeError("not a JSON object")
        fields = {name: raw[name] for name in ("operator", "fingerprint", "created")}
        public_key_pem = raw["public_key"]
        for name, value in (*fields.items(), ("public_key", public_key_pem)):
            if not isinstance(value, str):
                raise TypeError(f"{name} is not a string")
        actual = fingerprint_of(load_public_key(public_key_pem))
        signed = _SIGNATURE_FIELD in raw
        signature = _decode_signature(raw[_SIGNATURE_FIELD]) if signed else b""
        record = {name: value for name, value in raw.items() if name != _SIGNATURE_FIELD}
        signed_bytes = canonical_json(record)
    except (ValueError, KeyError, TypeError) as exc:
        raise SigningKeyError(f"{info_path} is unreadable: {exc}", hint=_RESTORE_HINT) from None
    if actual != fields["fingerprint"]:
        raise SigningKeyError(
            f"{info_path} is inconsistent: its fingerprint is not its key's", hint=_RESTORE_HINT
        )
    if signed and not verify_signature(public_key_pem, signed_bytes, signature):
        raise SigningKeyError(
            f"{info_path} was changed: its operator name ({fields['operator']!r}), "
            "fingerprint or public key is not the one signed with the key",
            hint=_RESTORE_HINT,
        )
    if not fields["operator"].strip() or not _is_one_line(fields["operator"]):
        raise SigningKeyError(
            f"{info_path} is unreadable: its operator name is empty or not one line",
            hint=_RESTORE_HINT,
        )
    return KeyInfo(
        operator=fields["operator"],
        fingerprint=fields["fingerprint"],
        created=fields["created"],
        path=key_path,
        public_key_pem=public_key_pem,
        bound=signed,
    )


def _decode_signature(value: object) -> bytes:
    if not isinstance(value, str):
        raise TypeError("its signature is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        raise ValueError("its signature is not base64") from None


def _bind(info: KeyInfo, signer: Signer) -> None:
    """Sign an unbound (older) key.json with its own key and put the signed one in place."""
    info_path = info.path.parent / KEY_INFO_NAME
    document = _signed_info_document(dataclasses.replace(info, bound=True), signer)
    try:
        atomic_write_bytes(info_path, document, 0o644)
    except OSError as exc:
        raise SigningKeyError(
            f"cannot sign the operator name in {info_path} with the key: {exc.strerror or exc}",
            hint="the key folder must be writable by you once, to bind the operator name",
        ) from None


def _info_record(info: KeyInfo) -> dict[str, Any]:
    return {
        "operator": info.operator,
        "fingerprint": info.fingerprint,
        "created": info.created,
        "algorithm": ALGORITHM,
        "public_key": info.public_key_pem,
    }


def _signed_info_document(info: KeyInfo, signer: Signer) -> bytes:
    """key.json: the record plus the key's signature over the record's canonical JSON."""
    record = _info_record(info)
    signature = signer.sign(canonical_json(record))
    return canonical_json({**record, _SIGNATURE_FIELD: _b64(signature)}) + b"\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _is_one_line(text: str) -> bool:
    return not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


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
