"""What an RFC 3161 stamp adds to a capture, against a local TSA (tests/tsa.py).

A/B, alternated: A seals and publishes a small item (the capture's steps 7 and 8:
hash, sign, SHA256SUMS, rename, ``captured`` entry); B does the same and then stamps it
(:func:`cases.timestamping.stamp_sealed`: query, POST to the TSA on 127.0.0.1, which
answers with ``openssl ts -reply``, vet the reply, store it, rewrite SHA256SUMS, log
``timestamped``). The figure is the median of the pairwise differences B - A; the
TSA's own time (one ``openssl`` process per reply) is part of it, as a real TSA's
answer time would be. Target: at most 50 ms.

    .venv/bin/python benchmarks/timestamp_bench.py [--pairs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cases.actions import open_case, publish_capture
from cases.store import EvidenceStore
from cases.timestamping import stamp_sealed, tsa_config
from chain_of_custody.item import seal_item
from chain_of_custody.signing import Signer, generate_private_key
from tests.tsa import make_pki, running_tsa

_CASE = {
    "title": "Timestamp benchmark",
    "category": "online-crime",
    "investigator": "Benchmark",
    "authority": "benchmark data only, nothing real",
}


def _seal(store: EvidenceStore, case_id: str, signer: Signer) -> str:
    staging = store.new_item(case_id)
    (staging.path / "archive.warc.gz").write_bytes(os.urandom(256 * 1024))
    (staging.path / "text.txt").write_bytes(b"the post's visible text\n" * 400)
    provenance = {"requested_url": "https://bench.example/", "final_url": "https://bench.example/"}
    sealed = seal_item(
        staging.path,
        item_id=staging.item_id,
        case_id=case_id,
        status="complete",
        provenance=provenance,
        signer=signer,
    )
    publish_capture(
        store,
        case_id,
        staging,
        manifest_sha256=sealed.manifest_sha256,
        requested_url="https://bench.example/",
        final_url="https://bench.example/",
        status="complete",
        files=len(sealed.files),
        signer=signer,
    )
    return staging.item_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=30)
    args = parser.parse_args()
    signer = Signer("Benchmark", generate_private_key())
    with tempfile.TemporaryDirectory(prefix="tsa-bench-") as tmp:
        root = Path(tmp)
        pki = make_pki(root / "pki")
        store = EvidenceStore(root / "home")
        (root / "home").mkdir()
        open_case(store, "BENCH-1", signer=signer, **_CASE)
        with running_tsa(pki) as server:
            config = tsa_config([server.url("good")], [pki.root])
            plain: list[float] = []
            stamped: list[float] = []
            stamp_only: list[float] = []
            _seal(store, "BENCH-1", signer)  # warm-up
            for _ in range(args.pairs):
                start = time.perf_counter()
                _seal(store, "BENCH-1", signer)
                plain.append(time.perf_counter() - start)
                start = time.perf_counter()
                item = _seal(store, "BENCH-1", signer)
                sealed_at = time.perf_counter()
                outcome = stamp_sealed(store, "BENCH-1", item, config, signer=signer)
                end = time.perf_counter()
                assert outcome.state == "timestamped", outcome.detail
                stamped.append(end - start)
                stamp_only.append(end - sealed_at)
    diffs = [b - a for a, b in zip(plain, stamped, strict=True)]
    print(
        f"machine: {len(os.sched_getaffinity(0))} cores, Linux {platform.release()} "
        f"{platform.machine()}, Python {platform.python_version()}"
    )
    print(f"pairs: {args.pairs}")
    print(f"seal+publish median:           {statistics.median(plain) * 1000:.1f} ms")
    print(f"seal+publish+stamp median:     {statistics.median(stamped) * 1000:.1f} ms")
    print(f"added by stamping (median B-A): {statistics.median(diffs) * 1000:.1f} ms")
    print(f"stamp_sealed call alone median: {statistics.median(stamp_only) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
