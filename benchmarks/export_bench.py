"""Export benchmark: ``osint-capture export`` against ``zip -0`` of the same files.

    python benchmarks/export_bench.py [--quick] [--pairs N] [--keep]

Builds, under a fresh folder in /tmp (removed at the end unless ``--keep``), a case
holding one ~1 GiB item (``--quick``: ~60 MiB) exactly as ``benchmarks/verify_bench.py``
builds its large item (the capture's own WARC writer, sealed and published with the real
case actions, by a throwaway key kept for the run).

Then, with every file in the page cache (one untimed read first), it alternates A B A B:
A is :func:`cases.export.export_case` with the real report renderer (Jinja2, and
Chromium printing ``report.pdf``), which verifies the item, logs the ``exported`` entry,
and streams everything into a stored zip that is fsynced and renamed into place; B is
``zip -0 -r -q`` of the same case folder (not fsynced: the export's own fsync is in its
time, zip's writeback is not). Before each run the previous output is deleted and
``sync`` run, untimed, so that neither pays for the other's writeback. Each runs in a
fresh child process; A times the call and reports its own peak RSS (VmHWM; Chromium
and Playwright's driver are other processes). Reported: the medians and ranges, and the
median of the pairwise ratios A/B.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import verify_bench  # the builder of the large item, shared

_MIB = 1 << 20
_CASE = "BENCH-EXPORT"


def build(root: Path, *, quick: bool) -> tuple[Path, int]:
    """The case folder, and the bytes of its items."""
    from cryptography.hazmat.primitives import serialization

    from chain_of_custody.signing import Signer, generate_private_key

    key = generate_private_key()
    (root / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    signer = Signer(operator="Benchmark", private_key=key)
    scratch = root / "scratch"
    scratch.mkdir()
    store = verify_bench._case(root / "home", _CASE, signer)
    large = [24 * _MIB, 24 * _MIB] if quick else [236 * _MIB] * 4
    small = 300 if quick else 1000
    item = verify_bench._publish(
        store, _CASE, signer, scratch, large=large, small=small, small_size=48 << 10
    )
    shutil.rmtree(scratch)
    return store.case_dir(_CASE), sum(p.stat().st_size for p in item.iterdir())


def _child(root: str) -> None:
    """One export in this (fresh) process, printed as JSON."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from cases.export import export_case
    from cases.store import EvidenceStore
    from chain_of_custody.signing import Signer
    from osint_capture.engine.browser import find_browser
    from osint_capture.report import build_renderer

    base = Path(root)
    key = serialization.load_pem_private_key((base / "key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    signer = Signer(operator="Benchmark", private_key=key)
    start = time.perf_counter()
    with build_renderer(find_browser(None)) as render:
        result = export_case(
            EvidenceStore(base / "home"),
            _CASE,
            out=base / "out" / "bundle.zip",
            recipient="Benchmark",
            reason="benchmark",
            force=True,
            signer=signer,
            render=render,
        )
    took = time.perf_counter() - start
    print(json.dumps({"seconds": took, "peak_kib": verify_bench._peak_kib(), "size": result.size}))


def _export(root: Path) -> dict[str, Any]:
    (root / "out" / "bundle.zip").unlink(missing_ok=True)
    os.sync()  # untimed: no writeback of the previous run's output during this one
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"export child failed: {proc.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _zip0(case_dir: Path, root: Path) -> float:
    target = root / "out" / "zip0.zip"
    target.unlink(missing_ok=True)
    os.sync()  # as for the export: each run starts with nothing left to write back
    start = time.perf_counter()
    subprocess.run(["zip", "-0", "-r", "-q", str(target), "."], cwd=case_dir, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~60 MiB item")
    parser.add_argument("--pairs", type=int, default=5, help="A B pairs (5)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child)
        return
    if shutil.which("zip") is None:
        raise SystemExit("needs `zip` (apt-get install zip) for the comparison")
    need = (300 if args.quick else 3300) * _MIB
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < need:
        raise SystemExit(f"needs {need / (1 << 30):.1f} GiB free in /tmp, has {free >> 30} GiB")
    root = Path(tempfile.mkdtemp(prefix="export-bench-", dir=tempfile.gettempdir()))
    try:
        start = time.perf_counter()
        case_dir, data = build(root, quick=args.quick)
        (root / "out").mkdir()
        os.sync()
        print(f"built {data / _MIB:.0f} MiB in {time.perf_counter() - start:.0f} s", flush=True)
        verify_bench._hash_all(verify_bench._files_under(case_dir))  # into the page cache
        exports: list[dict[str, Any]] = []
        zips: list[float] = []
        for pair in range(args.pairs):
            exports.append(_export(root))
            zips.append(_zip0(case_dir, root))
            print(
                f"pair {pair + 1}: export {exports[-1]['seconds']:.2f} s "
                f"(peak RSS {exports[-1]['peak_kib'] / 1024:.0f} MiB), zip -0 {zips[-1]:.2f} s",
                flush=True,
            )
        times = [e["seconds"] for e in exports]
        ratios = [a / b for a, b in zip(times, zips, strict=True)]
        peak = max(e["peak_kib"] for e in exports) / 1024
        print()
        print(f"Machine: {verify_bench._machine(root)}; files in the page cache (warm).")
        print()
        print(
            "| data | export (median, range) | zip -0 (median, range) | export / zip -0 "
            "(median of pairs, range) | export peak RSS (max) |"
        )
        print("|---|---|---|---|---|")
        print(
            f"| {data / _MIB:.0f} MiB item, bundle {exports[-1]['size'] / _MIB:.0f} MiB "
            f"| {statistics.median(times):.2f} s ({min(times):.2f}-{max(times):.2f}) "
            f"| {statistics.median(zips):.2f} s ({min(zips):.2f}-{max(zips):.2f}) "
            f"| {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}) "
            f"| {peak:.0f} MiB |"
        )
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
