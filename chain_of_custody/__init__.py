"""Chain of custody for captured evidence: canonical JSON, hashes, signatures, the signed
item manifest, the hash-chained custody log, and their verification.

Depends on the standard library, ``cryptography`` and ``warcio`` only, so an examiner can
verify evidence with this package alone (``python -m chain_of_custody verify PATH``).
"""

from __future__ import annotations

from chain_of_custody.canonical import canonical_json, is_canonical, parse_canonical
from chain_of_custody.custody import (
    ACTIONS,
    CUSTODY_LOG_NAME,
    ChainReport,
    append_position,
    build_entry,
    genesis_hash,
    line_sha256,
    parse_line,
    split_log,
    verify_chain,
)
from chain_of_custody.hashing import HashingReader, sha256_bytes, sha256_file
from chain_of_custody.manifest import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    FileEntry,
    build_manifest,
    load_manifest,
    manifest_files,
    write_signed_manifest,
)
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
from chain_of_custody.timeutil import format_utc, parse_utc, utc_now
from chain_of_custody.verify import (
    CaseReport,
    ItemReport,
    StepResult,
    verify_case,
    verify_item,
)

__all__ = [
    "ACTIONS",
    "ALGORITHM",
    "CUSTODY_LOG_NAME",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "SUMS_NAME",
    "CaseReport",
    "ChainReport",
    "FileEntry",
    "HashingReader",
    "ItemReport",
    "Signer",
    "StepResult",
    "append_position",
    "build_entry",
    "build_manifest",
    "canonical_json",
    "encrypt_private_key",
    "fingerprint_of",
    "format_utc",
    "generate_private_key",
    "genesis_hash",
    "is_canonical",
    "line_sha256",
    "load_manifest",
    "load_private_key",
    "load_public_key",
    "manifest_files",
    "normalize_fingerprint",
    "parse_canonical",
    "parse_line",
    "parse_utc",
    "sha256_bytes",
    "sha256_file",
    "split_log",
    "utc_now",
    "verify_case",
    "verify_chain",
    "verify_item",
    "verify_signature",
    "write_signed_manifest",
]
