"""Chain of custody for captured evidence: canonical JSON, hashes, signatures, the item
(its layout, signed manifest and sealing), durable writes, the hash-chained custody log,
and their verification.

Depends on the standard library, ``cryptography`` and ``warcio`` only, so an examiner can
verify evidence with this package alone (``python -m chain_of_custody verify PATH``).
"""

from __future__ import annotations

from chain_of_custody.bundle import BundleReport, open_bundle, verify_bundle
from chain_of_custody.canonical import canonical_json, is_canonical, parse_canonical
from chain_of_custody.custody import (
    ACTIONS,
    AFTER_CLOSE_ACTIONS,
    CUSTODY_LOG_NAME,
    CaseFacts,
    ChainReport,
    build_entry,
    case_facts,
    genesis_hash,
    line_sha256,
    parse_line,
    split_log,
    verify_case_log,
    verify_chain,
)
from chain_of_custody.hashing import HashingReader, sha256_bytes, sha256_file
from chain_of_custody.item import (
    ITEM_FILES,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    SIGNATURE_NAME,
    SUMS_NAME,
    WARC_NAME,
    FileEntry,
    SealedItem,
    build_manifest,
    load_manifest,
    manifest_files,
    seal_item,
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
    "AFTER_CLOSE_ACTIONS",
    "ALGORITHM",
    "CUSTODY_LOG_NAME",
    "ITEM_FILES",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "SUMS_NAME",
    "WARC_NAME",
    "BundleReport",
    "CaseFacts",
    "CaseReport",
    "ChainReport",
    "FileEntry",
    "HashingReader",
    "ItemReport",
    "SealedItem",
    "Signer",
    "StepResult",
    "build_entry",
    "build_manifest",
    "canonical_json",
    "case_facts",
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
    "open_bundle",
    "parse_canonical",
    "parse_line",
    "parse_utc",
    "seal_item",
    "sha256_bytes",
    "sha256_file",
    "split_log",
    "utc_now",
    "verify_bundle",
    "verify_case",
    "verify_case_log",
    "verify_chain",
    "verify_item",
    "verify_signature",
    "write_signed_manifest",
]
