"""Verification benchmark: ``verify`` against one plain SHA-256 pass over the same files.

    python benchmarks/verify_bench.py [--quick] [--pairs N] [--keep]

Builds, under a fresh folder in /tmp (removed at the end unless ``--keep``):

1. a case holding one ~1 GiB item (``--quick``: ~60 MiB) whose WARC is written with the
   capture's own writer (:class:`osint_capture.engine.warc.CaptureWarc`, SHA-256
   digests): a few large responses with random (incompressible) bodies, many small
   responses (half text, half random), the renderings; sealed with
   :func:`chain_of_custody.item.seal_item` by a throwaway key and published with
   :func:`cases.actions.publish_capture`;
2. a case of 200 small items (``--quick``: 20), built the same way.

Bodies are streamed to files in 1 MiB pieces, so building stays within a few tens of MiB.

Then, with every file in the page cache (one untimed read of everything first), it
alternates A B A B: A is ``verify_item`` (or ``verify_case``), B is a plain
``hashlib.sha256`` pass over the same files (every regular file under the item, or the
case), each in a fresh child process that imports what it needs, then times only the
call and reports its own peak RSS (VmHWM). Reported: the median of the pairwise ratios
A/B, the medians and ranges of A and B, and the peak RSS of each child.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_MIB = 1 << 20
_CASE_FIELDS = {
    "title": "Verification benchmark",
    "category": "online-crime",
    "investigator": "Benchmark",
    "authority": "benchmark data only, nothing real",
}
_WHEN = "2026-11-25T12:00:00.000000Z"


# -- building ----------------------------------------------------------------------------


def _peak_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    return 0


def _write_random(path: Path, size: int) -> str:
    """``size`` random bytes to ``path``, 1 MiB at a time; returns their hex SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, _MIB))
            digest.update(block)
            out.write(block)
            left -= len(block)
    return digest.hexdigest()


def _write_text(path: Path, size: int, seed: int) -> str:
    """``size`` bytes of compressible HTML-like text; returns their hex SHA-256."""
    line = b"<p class='c%d'>lorem ipsum dolor sit amet, consectetur %d adipiscing</p>\n"
    parts = []
    total = 0
    index = 0
    while total < size:
        part = line % (index % 97, seed * 7919 + index)
        parts.append(part)
        total += len(part)
        index += 1
    data = b"".join(parts)[:size]
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _exchange(order: int, url: str, body: Path, size: int, sha: str, mime: str) -> Any:
    from osint_capture.engine.exchange import Exchange

    return Exchange(
        order=order,
        network_id=f"n{order}",
        url=url,
        method="GET",
        resource_type="Media" if mime.startswith("video/") else "Other",
        request_headers={"User-Agent": "verify-bench", "Accept": "*/*"},
        request_body=None,
        request_time=_WHEN,
        status=200,
        status_text="OK",
        response_headers=[("Content-Type", mime), ("Content-Length", str(size))],
        response_time=_WHEN,
        protocol="h2",
        remote_ip="127.0.0.1",
        body_path=body,
        body_size=size,
        body_sha256=sha,
        complete=True,
        request_headers_source="network",
    )


def _fill_item(
    folder: Path, scratch: Path, *, large: list[int], small: int, small_size: int
) -> None:
    """A capture's files in ``folder``: archive.warc.gz and the four renderings."""
    from osint_capture.engine.warc import CaptureWarc

    base = "https://bench.example/post/1"
    (folder / "dom.html").write_bytes(b"<html><body>" + b"<p>post</p>" * 2000 + b"</body></html>")
    (folder / "text.txt").write_bytes(b"the post's visible text\n" * 400)
    _write_random(folder / "screenshot.png", 512 << 10)
    _write_random(folder / "page.pdf", 256 << 10)
    body = scratch / "body"
    with open(folder / "archive.warc.gz", "wb") as fh:
        warc = CaptureWarc(fh)
        info = warc.warcinfo("archive.warc.gz", {"software": "verify-bench"}, _WHEN).record_id
        main = None
        order = 0
        for size in large:
            sha = _write_random(body, size)
            ex = _exchange(order, f"{base}/media/{order}.mp4", body, size, sha, "video/mp4")
            warc.exchange(ex, info)
            order += 1
        for index in range(small):
            if index % 2:
                sha = _write_random(body, small_size)
                mime = "image/jpeg"
            else:
                sha = _write_text(body, small_size, index)
                mime = "text/html"
            ref = warc.exchange(
                _exchange(order, f"{base}/r/{index}", body, small_size, sha, mime), info
            )
            main = main or ref
            order += 1
        for step, name, kind, mime in (
            ("screenshot", "screenshot.png", "resource", "image/png"),
            ("pdf", "page.pdf", "resource", "application/pdf"),
            ("dom", "dom.html", "conversion", "text/html; charset=utf-8"),
            ("text", "text.txt", "conversion", "text/plain; charset=utf-8"),
        ):
            target = f"urn:osint-capture:{step}:{base}"
            warc.rendering(target, kind, folder / name, mime, _WHEN, info, main)
    body.unlink()


def _case(home: Path, case_id: str, signer: Any) -> Any:
    from cases.actions import open_case
    from cases.store import EvidenceStore

    store = EvidenceStore(home)
    open_case(store, case_id, signer=signer, **_CASE_FIELDS)
    return store


def _publish(store: Any, case_id: str, signer: Any, scratch: Path, **shape: Any) -> Path:
    from cases.actions import publish_capture
    from chain_of_custody.item import seal_item

    staging = store.new_item(case_id)
    _fill_item(staging.path, scratch, **shape)
    provenance = {
        "requested_url": "https://bench.example/post/1",
        "final_url": "https://bench.example/post/1",
    }
    sealed = seal_item(
        staging.path,
        item_id=staging.item_id,
        case_id=case_id,
        status="complete",
        provenance=provenance,
        signer=signer,
    )
    return publish_capture(
        store,
        case_id,
        staging,
        manifest_sha256=sealed.manifest_sha256,
        requested_url=provenance["requested_url"],
        final_url=provenance["final_url"],
        status="complete",
        files=len(sealed.files),
        signer=signer,
    )


def build(root: Path, *, quick: bool) -> tuple[Path, str, Path, int]:
    """(the big item's folder and its shape, the small items' case folder, the builder's
    peak RSS)."""
    from chain_of_custody.signing import Signer, generate_private_key

    signer = Signer(operator="Benchmark", private_key=generate_private_key())
    scratch = root / "scratch"
    scratch.mkdir()
    home = root / "home"
    big_store = _case(home, "BENCH-BIG", signer)
    if quick:
        large, small = [24 * _MIB, 24 * _MIB], 300
    else:
        large, small = [236 * _MIB] * 4, 1000
    item = _publish(
        big_store, "BENCH-BIG", signer, scratch, large=large, small=small, small_size=48 << 10
    )
    count = 20 if quick else 200
    small_store = _case(home, "BENCH-SMALL", signer)
    for _ in range(count):
        _publish(
            small_store, "BENCH-SMALL", signer, scratch, large=[], small=4, small_size=12 << 10
        )
    shape = (
        f"{len(large)} responses of {large[0] >> 20} MiB, {small} of 48 KiB "
        f"({2 * (len(large) + small) + 5} records)"
    )
    return item, shape, small_store.case_dir("BENCH-SMALL"), _peak_kib()


# -- measuring ---------------------------------------------------------------------------


def _files_under(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found.extend(Path(root) / name for name in sorted(names))
    return [path for path in found if path.is_file() and not path.is_symlink()]


def _hash_all(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as handle:
            while block := handle.read(_MIB):
                digest.update(block)
                total += len(block)
    return total


def _child(kind: str, target: str) -> None:
    """Run one measurement in this (fresh) process and print it as JSON."""
    from chain_of_custody.verify import verify_case, verify_item

    path = Path(target)
    paths = _files_under(path)
    before = os.times()
    start = time.perf_counter()
    if kind == "verify-item":
        ok = verify_item(path).ok
    elif kind == "verify-case":
        ok = verify_case(path).ok
    else:
        ok = _hash_all(paths) > 0
    took = time.perf_counter() - start
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    print(json.dumps({"seconds": took, "cpu": cpu, "peak_kib": _peak_kib(), "ok": ok}))


def _run_child(kind: str, target: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{kind} child failed: {proc.stderr.strip()}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result["ok"]:
        raise SystemExit(f"{kind} of {target} did not pass")
    return result


def compare(name: str, verify_kind: str, target: Path, pairs: int) -> dict[str, Any]:
    _hash_all(_files_under(target))  # untimed: every file in the page cache
    a: list[dict[str, Any]] = []
    b: list[dict[str, Any]] = []
    for _ in range(pairs):
        a.append(_run_child(verify_kind, target))
        b.append(_run_child("hash", target))
    ratios = [x["seconds"] / y["seconds"] for x, y in zip(a, b, strict=True)]
    row = {
        "name": name,
        "bytes": sum(p.stat().st_size for p in _files_under(target)),
        "files": len(_files_under(target)),
        "pairs": pairs,
        "ratio": statistics.median(ratios),
        "ratio_range": (min(ratios), max(ratios)),
        "verify": statistics.median(x["seconds"] for x in a),
        "verify_range": (min(x["seconds"] for x in a), max(x["seconds"] for x in a)),
        "hash": statistics.median(y["seconds"] for y in b),
        "hash_range": (min(y["seconds"] for y in b), max(y["seconds"] for y in b)),
        "verify_cpu": statistics.median(x["cpu"] for x in a),
        "verify_peak_mib": max(x["peak_kib"] for x in a) / 1024,
        "hash_peak_mib": max(y["peak_kib"] for y in b) / 1024,
    }
    print(
        f"{name}: verify/hash median {row['ratio']:.2f}x "
        f"(range {row['ratio_range'][0]:.2f}-{row['ratio_range'][1]:.2f}); "
        f"verify {row['verify']:.3f} s (CPU {row['verify_cpu']:.3f} s), hash {row['hash']:.3f} s; "
        f"peak RSS verify {row['verify_peak_mib']:.0f} MiB, hash {row['hash_peak_mib']:.0f} MiB",
        flush=True,
    )
    return row


def _machine(root: Path) -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as info:
        total_kib = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    fs = (
        subprocess.run(["df", "-hT", str(root)], capture_output=True, text=True, check=False)
        .stdout.splitlines()[-1]
        .split()
    )
    return (
        f"{len(os.sched_getaffinity(0))} cores ({model}), {total_kib / (1 << 20):.0f} GiB, "
        f"Linux {platform.release()} {platform.machine()}, Python {platform.python_version()}; "
        f"data on {fs[0]} ({fs[1]})"
    )


def _span(low_high: tuple[float, float], form: str) -> str:
    return f"{low_high[0]:{form}}\N{EN DASH}{low_high[1]:{form}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~60 MiB item and 20 small items")
    parser.add_argument("--pairs", type=int, default=5, help="A B pairs per comparison (5)")
    parser.add_argument("--keep", action="store_true", help="keep the data folder")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    need = (300 if args.quick else 2600) * _MIB
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < need:
        raise SystemExit(
            f"needs {need / (1 << 30):.1f} GiB free in /tmp, has {free / (1 << 30):.1f}"
        )
    root = Path(tempfile.mkdtemp(prefix="verify-bench-", dir=tempfile.gettempdir()))
    try:
        start = time.perf_counter()
        item, shape, case, build_peak = build(root, quick=args.quick)
        os.sync()  # no writeback of the fresh files while timing
        print(
            f"built in {time.perf_counter() - start:.0f} s under {root}; "
            f"builder peak RSS {build_peak / 1024:.0f} MiB",
            flush=True,
        )
        rows = [
            compare(f"one item: {shape}", "verify-item", item, args.pairs),
            compare(
                f"a case of {len(list((case / 'items').iterdir()))} small items",
                "verify-case",
                case,
                args.pairs,
            ),
        ]
        print()
        print(f"Machine: {_machine(root)}; files in the page cache (warm).")
        print()
        print(
            "| scenario | data | verify (median, range) | one SHA-256 pass "
            "| verify / hash (median of pairs, range) | peak RSS verify / hash |"
        )
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['name']} | {row['bytes'] / _MIB:.0f} MiB in {row['files']} files "
                f"| {row['verify']:.3f} s ({_span(row['verify_range'], '.3f')}) "
                f"| {row['hash']:.3f} s ({_span(row['hash_range'], '.3f')}) "
                f"| {row['ratio']:.2f}x ({_span(row['ratio_range'], '.2f')}) "
                f"| {row['verify_peak_mib']:.0f} / {row['hash_peak_mib']:.0f} MiB |"
            )
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
