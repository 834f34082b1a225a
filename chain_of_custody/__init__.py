"""Chain of custody for captured evidence: canonical JSON, hashes, signatures, the item
(its layout, signed manifest and sealing), durable writes, the hash-chained custody log,
and their verification.

Depends on the standard library, ``cryptography`` and ``warcio`` only, so an examiner can
verify evidence with this package alone (``python -m chain_of_custody verify PATH``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chain_of_custody.lazy import lazy_exports

if TYPE_CHECKING:
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

# Each name is loaded from its module on first use, so that importing one module of
# the package (the CLI's errors, a case's store) does not load all of them.
_EXPORTS = {
    "ACTIONS": "chain_of_custody.custody",
    "AFTER_CLOSE_ACTIONS": "chain_of_custody.custody",
    "ALGORITHM": "chain_of_custody.signing",
    "BundleReport": "chain_of_custody.bundle",
    "CUSTODY_LOG_NAME": "chain_of_custody.custody",
    "CaseFacts": "chain_of_custody.custody",
    "CaseReport": "chain_of_custody.verify",
    "ChainReport": "chain_of_custody.custody",
    "FileEntry": "chain_of_custody.item",
    "HashingReader": "chain_of_custody.hashing",
    "ITEM_FILES": "chain_of_custody.item",
    "ItemReport": "chain_of_custody.verify",
    "MANIFEST_FORMAT": "chain_of_custody.item",
    "MANIFEST_NAME": "chain_of_custody.item",
    "SIGNATURE_NAME": "chain_of_custody.item",
    "SUMS_NAME": "chain_of_custody.item",
    "SealedItem": "chain_of_custody.item",
    "Signer": "chain_of_custody.signing",
    "StepResult": "chain_of_custody.verify",
    "WARC_NAME": "chain_of_custody.item",
    "build_entry": "chain_of_custody.custody",
    "build_manifest": "chain_of_custody.item",
    "canonical_json": "chain_of_custody.canonical",
    "case_facts": "chain_of_custody.custody",
    "encrypt_private_key": "chain_of_custody.signing",
    "fingerprint_of": "chain_of_custody.signing",
    "format_utc": "chain_of_custody.timeutil",
    "generate_private_key": "chain_of_custody.signing",
    "genesis_hash": "chain_of_custody.custody",
    "is_canonical": "chain_of_custody.canonical",
    "line_sha256": "chain_of_custody.custody",
    "load_manifest": "chain_of_custody.item",
    "load_private_key": "chain_of_custody.signing",
    "load_public_key": "chain_of_custody.signing",
    "manifest_files": "chain_of_custody.item",
    "normalize_fingerprint": "chain_of_custody.signing",
    "open_bundle": "chain_of_custody.bundle",
    "parse_canonical": "chain_of_custody.canonical",
    "parse_line": "chain_of_custody.custody",
    "parse_utc": "chain_of_custody.timeutil",
    "seal_item": "chain_of_custody.item",
    "sha256_bytes": "chain_of_custody.hashing",
    "sha256_file": "chain_of_custody.hashing",
    "split_log": "chain_of_custody.custody",
    "utc_now": "chain_of_custody.timeutil",
    "verify_bundle": "chain_of_custody.bundle",
    "verify_case": "chain_of_custody.verify",
    "verify_case_log": "chain_of_custody.custody",
    "verify_chain": "chain_of_custody.custody",
    "verify_item": "chain_of_custody.verify",
    "verify_signature": "chain_of_custody.signing",
    "write_signed_manifest": "chain_of_custody.item",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

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
