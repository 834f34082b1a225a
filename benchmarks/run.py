"""Capture benchmarks (``make bench``): issue 14's three measurements, into docs/PERFORMANCE.md.

    python benchmarks/run.py [--pairs N] [--batch-posts N] [--batch-pairs N] [--media-mib M]
                             [--no-write]

Every run is a real process driving Chromium against the bundled sample site on
127.0.0.0/8 (no other address).

1. **One capture against the browser's floor.** A is ``osint-capture capture`` of the
   sample post (40 infinite-scroll comments), B is ``benchmarks/floor.py`` (plain
   Playwright, the same Chromium and flags: load, scroll until the known last comment is
   present, full-page screenshot, close). Whole-process wall time, alternated A B A B;
   the figure is the median of the pairwise ratios A/B.
2. **Batch throughput.** ``osint-capture capture-batch`` of N distinct URLs of the sample
   post on one host at concurrency 2 (the default 1 s politeness delay), and spread over
   five hosts (127.0.0.1 to 127.0.0.5) at concurrency 4: posts per minute, and the peak
   memory of the whole process tree (the CLI, Playwright's driver, every Chromium
   process), sampled every 50 ms. Each batch alternates with its floor,
   ``floor.py --batch`` (plain Playwright, one browser, the same concurrency and host
   delay); ``--batch-pairs`` pairs, the median of the pairwise rate ratios.
3. ``osint-capture --help`` wall time (median of 10), and the CLI process's own peak RSS
   (``VmHWM``) capturing a page that loads a 160 MiB body.

The results replace the section between the ``capture-bench`` markers of
docs/PERFORMANCE.md (``--no-write`` only prints them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from osint_capture.demo.sample_site import COMMENT_PAGES, COMMENTS_PER_PAGE, SampleSite
from osint_capture.engine.browser import find_browser

_ROOT = Path(__file__).resolve().parent.parent
_DOC = _ROOT / "docs" / "PERFORMANCE.md"
_START, _END = "<!-- capture-bench:start -->", "<!-- capture-bench:end -->"
_FLOOR = Path(__file__).resolve().parent / "floor.py"

_PEAK_WRAPPER = (
    "import atexit, sys\n"
    "def peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM'):\n"
    "            print('PEAK', line.split()[1], file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "from osint_capture.cli import main\n"
    "sys.argv[0] = 'osint-capture'\n"
    "main()\n"
)


class _Bench:
    """A throwaway evidence home with a key and the CLI to run against it."""

    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "evidence"
        self.env = dict(
            os.environ,
            OSINT_CAPTURE_KEY_DIR=str(tmp / "keys"),
            OSINT_CAPTURE_PASSPHRASE="benchmark only",
        )
        self._cases = 0
        self.cli("keys", "init", "--operator", "Benchmark")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "osint_capture", "--home", str(self.home), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(args[:2])} failed: {proc.stderr.strip()}")
        return proc

    def new_case(self) -> str:
        self._cases += 1
        case = f"BENCH-{self._cases:03d}"
        self.cli("case", "open", case, "--title", "benchmark", "--category", "online-crime",
                 "--investigator", "bench", "--authority", "bench")
        return case

    def capture(self, url: str, case: str) -> tuple[float, int]:
        """Whole-command wall time and the CLI process's own peak RSS (KiB)."""
        argv = [sys.executable, "-c", _PEAK_WRAPPER, "--home", str(self.home), "capture", url,
                "--case", case, "--allow-private-network", "--json"]
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, check=False)
        took = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"capture failed: {proc.stderr.strip()}")
        if json.loads(proc.stdout)["status"] != "complete":
            raise SystemExit(f"capture of {url} was not complete: {proc.stdout}")
        peak = int(next(x for x in proc.stderr.splitlines() if x.startswith("PEAK")).split()[1])
        return took, peak


def _floor(url: str, executable: str | None) -> float:
    argv = [sys.executable, str(_FLOOR), url, str(COMMENT_PAGES * COMMENTS_PER_PAGE)]
    if executable:
        argv.append(executable)
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - start


def _tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and every descendant, KiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            status = (entry / "status").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
        found = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
        rss[int(entry.name)] = int(found.group(1)) if found else 0
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def _in_tree(argv: Sequence[str], env: dict[str, str]) -> tuple[float, int, str, str, int]:
    """Run ``argv``: wall time, peak RSS (KiB) of its whole process tree sampled every
    50 ms, its output and exit code."""
    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = proc.communicate()
    took = time.perf_counter() - start
    done.set()
    sampler.join()
    return took, peak, out, err, proc.returncode


def _listing(urls: Sequence[str]) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(urls) + "\n")
    return listing.name


def _batch(bench: _Bench, urls: Sequence[str], concurrency: int) -> tuple[float, int, str]:
    """Posts per minute, peak tree RSS (KiB), and the outcomes' tally."""
    case = bench.new_case()
    listing = _listing(urls)
    argv = [sys.executable, "-m", "osint_capture", "--home", str(bench.home), "capture-batch",
            listing, "--case", case, "--concurrency", str(concurrency),
            "--allow-private-network", "--json"]
    took, peak, out, err, code = _in_tree(argv, bench.env)
    os.unlink(listing)
    outcomes = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    tally: dict[str, int] = {}
    for outcome in outcomes:
        key = str(outcome.get("outcome", outcome.get("status", "?")))
        tally[key] = tally.get(key, 0) + 1
    if code != 0 or len(outcomes) != len(urls):
        raise SystemExit(f"capture-batch exited {code}: {err.strip()[-500:]}")
    return len(urls) / took * 60, peak, ", ".join(f"{v} {k}" for k, v in sorted(tally.items()))


def _floor_batch(
    urls: Sequence[str], concurrency: int, executable: str | None
) -> tuple[float, int]:
    """The batch floor (``floor.py --batch``): posts per minute and peak tree RSS (KiB)."""
    listing = _listing(urls)
    argv = [sys.executable, str(_FLOOR), "--batch", listing, "--concurrency", str(concurrency),
            str(COMMENT_PAGES * COMMENTS_PER_PAGE)]
    if executable:
        argv.append(executable)
    took, peak, _, err, code = _in_tree(argv, dict(os.environ))
    os.unlink(listing)
    if code != 0:
        raise SystemExit(f"the batch floor exited {code}: {err.strip()[-500:]}")
    return len(urls) / took * 60, peak


def _batch_row(
    bench: _Bench, label: str, urls: Sequence[str], concurrency: int, target: int,
    pairs: int, executable: str | None,
) -> str:
    """Our batch and its floor alternated ``pairs`` times; medians, and the median of
    the pairwise ratios of their rates."""
    rates, peaks, floors, floor_peaks, tallies = [], [], [], [], []
    for _ in range(pairs):
        rate, peak, tally = _batch(bench, urls, concurrency)
        floor, floor_peak = _floor_batch(urls, concurrency, executable)
        rates.append(rate)
        peaks.append(peak)
        tallies.append(tally)
        floors.append(floor)
        floor_peaks.append(floor_peak)
    ratio = statistics.median(r / f for r, f in zip(rates, floors, strict=True))
    return (
        f"| {label} | {statistics.median(rates):.0f} posts/min ({tallies[-1]}) "
        f"| {statistics.median(floors):.0f} posts/min | {ratio:.2f} | at least {target} "
        f"| {_mib(statistics.median(peaks))} | {_mib(statistics.median(floor_peaks))} |"
    )


def _help_time() -> float:
    times = []
    for _ in range(10):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "osint_capture", "--help"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _load(averages: tuple[float, float, float]) -> str:
    return "/".join(f"{a:.1f}" for a in averages)


def _mib(kib: float) -> str:
    return f"{kib / 1024:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--batch-posts", type=int, default=50)
    parser.add_argument("--batch-pairs", type=int, default=2)
    parser.add_argument("--media-mib", type=int, default=160)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    choice = find_browser(None)
    executable = str(choice.executable) if choice.executable else None
    load_before = os.getloadavg()
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        bench = _Bench(Path(tmp))
        case = bench.new_case()
        with SampleSite() as site:
            post = site.url("/post/1")
            # Warm the page cache and the browser's first start, untimed.
            _floor(post, executable)
            bench.capture(post, case)
            floors, captures, ratios, peaks = [], [], [], []
            for _ in range(args.pairs):
                took, peak = bench.capture(post, case)
                floor = _floor(post, executable)
                captures.append(took)
                floors.append(floor)
                peaks.append(peak)
                ratios.append(took / floor)
            media_took, media_peak = bench.capture(
                site.url(f"/post/1/media?mib={args.media_mib}"), case
            )
            one_host = [f"{post}?copy={n}" for n in range(1, args.batch_posts + 1)]
            batch_rows: list[str] = []
            if args.batch_posts <= 0:
                batch_rows.append("| batches | not measured (--batch-posts 0) | | | | | |")
            else:
                try:
                    batch_rows.append(_batch_row(
                        bench, f"{args.batch_posts} posts, one host, concurrency 2, "
                        "1 s host delay", one_host, 2, 55, args.batch_pairs, executable))
                except SystemExit as exc:
                    batch_rows.append(f"| one host | not measured: {exc} | | | at least 55 | | |")
                try:
                    batch_rows.append(_five_hosts(bench, site, args, executable))
                except (SystemExit, OSError, TypeError) as exc:
                    batch_rows.append(f"| five hosts | not measured: {exc} | | | at least 90 | | |")
        help_time = _help_time()
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    lines += [
        f"Measured {when} with `make bench` (`benchmarks/run.py`). Machine: "
        f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, "
        f"{choice.version} (`{executable or 'Playwright bundled'}`). Load average (1, 5, 15 "
        "min) at the start "
        f"{_load(load_before)} (other work on the machine), at the end "
        f"{_load(os.getloadavg())} (the benchmark's own browsers count in it).",
        "",
        "### 1. One capture against the browser's floor",
        "",
        f"{args.pairs} pairs, alternating; whole-process wall time. The floor is "
        "`benchmarks/floor.py`: the same Chromium and flags, load, scroll until the last "
        "comment is present, full-page screenshot, close.",
        "",
        "| | median | range |",
        "|---|---|---|",
        f"| `osint-capture capture` of /post/1 | {statistics.median(captures):.2f} s "
        f"| {min(captures):.2f}-{max(captures):.2f} s |",
        f"| floor (plain Playwright) | {statistics.median(floors):.2f} s "
        f"| {min(floors):.2f}-{max(floors):.2f} s |",
        f"| **capture / floor** (median of pairwise ratios; target at most 1.3x) "
        f"| **{statistics.median(ratios):.2f}x** | {min(ratios):.2f}-{max(ratios):.2f}x |",
        "",
        f"The capture process's own peak RSS: {_mib(statistics.median(peaks))} (median).",
        "",
        "### 2. Batch throughput",
        "",
        f"{args.batch_pairs} pair(s), alternating `osint-capture capture-batch` with its "
        "floor, `benchmarks/floor.py --batch`: plain Playwright on the same Chromium and "
        "flags, one browser, N at once, each URL in a fresh context (load, scroll until the "
        "last comment, full-page screenshot), with the batch's 1 s between a host's starts. "
        "Peak RSS is the whole process tree's (the command, Playwright's driver, every "
        "Chromium process), sampled every 50 ms.",
        "",
        "| batch | measured | floor | measured / floor | target | peak RSS | floor's peak RSS |",
        "|---|---|---|---|---|---|---|",
        *batch_rows,
        "",
        "### 3. Start-up and memory",
        "",
        "| | measured | target |",
        "|---|---|---|",
        f"| `osint-capture --help` (median of 10) | {help_time:.2f} s | under 0.5 s |",
        f"| capture of a page loading a {args.media_mib} MiB body: CLI process peak RSS "
        f"| {_mib(media_peak)} ({media_took:.1f} s) | at most 120 MiB |",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        doc = _DOC.read_text()
        if _START in doc and _END in doc:
            head, rest = doc.split(_START, 1)
            doc = head + _START + "\n" + text + "\n" + _END + rest.split(_END, 1)[1]
        else:
            section = f"\n## Capture (`make bench`)\n\n{_START}\n{text}\n{_END}\n\n## "
            doc = doc.replace("\n## ", section, 1)
        _DOC.write_text(doc)


def _five_hosts(
    bench: _Bench, first: SampleSite, args: argparse.Namespace, executable: str | None
) -> str:
    """The batch spread over 127.0.0.1 to 127.0.0.5, one sample site on each."""
    sites = [SampleSite(host=f"127.0.0.{n}") for n in range(2, 6)]
    for site in sites:
        site.__enter__()
    try:
        hosts = [first, *sites]
        urls = [f"{hosts[n % 5].url('/post/1')}?copy={n}" for n in range(args.batch_posts)]
        return _batch_row(bench, f"{args.batch_posts} posts over five hosts, concurrency 4",
                          urls, 4, 90, args.batch_pairs, executable)
    finally:
        for site in sites:
            site.__exit__(None, None, None)


if __name__ == "__main__":
    main()
