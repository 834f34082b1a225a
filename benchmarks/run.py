"""Capture benchmarks: wall time and peak memory of real captures (``make bench``).

Every run is a real ``osint-capture capture`` process driving Chromium against the
bundled sample site on 127.0.0.1 (no other address). Reported: the median and the
range over the runs, and the capture process's own peak RSS (VmHWM).

    python benchmarks/run.py [--runs N] [--media-mib M]

The baseline drives the same page with plain Playwright (load, scroll to the bottom,
full-page screenshot) and no recording, to show what recording and evidence
handling cost on top of simply looking at the page.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from osint_capture.demo.sample_site import SampleSite
from osint_capture.engine.browser import chromium_args, find_browser, sandbox_available

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


def _capture(env: dict[str, str], home: Path, case: str, url: str) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _PEAK_WRAPPER, "--home", str(home), "capture", url,
         "--case", case, "--allow-private-network", "--json"],
        capture_output=True, text=True, env=env, check=False,
    )
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"capture failed: {proc.stderr.strip()}")
    peak = int(next(x for x in proc.stderr.splitlines() if x.startswith("PEAK")).split()[1])
    return took, peak, json.loads(proc.stdout)["status"]


async def _plain_drive(url: str) -> float:
    from playwright.async_api import async_playwright

    choice = find_browser(None)
    start = time.perf_counter()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(choice.executable) if choice.executable else None,
            args=chromium_args(),
            chromium_sandbox=sandbox_available(),
        )
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await page.goto(url, wait_until="networkidle")
        for _ in range(8):
            await page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
            await page.wait_for_timeout(300)
        with tempfile.TemporaryDirectory() as d:
            await page.screenshot(path=str(Path(d) / "s.png"), full_page=True)
        await browser.close()
    return time.perf_counter() - start


def _row(name: str, times: list[float], peaks: list[int] | None = None) -> str:
    med = statistics.median(times)
    rss = f"{statistics.median(peaks) / 1024:.0f} MiB (max {max(peaks) / 1024:.0f})" if peaks else "–"
    return f"| {name} | {len(times)} | {med:.2f} s | {min(times):.2f}–{max(times):.2f} s | {rss} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--media-mib", type=int, default=160)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "evidence"
        env = dict(os.environ, OSINT_CAPTURE_KEY_DIR=str(Path(tmp) / "keys"),
                   OSINT_CAPTURE_PASSPHRASE="benchmark only")
        cli = [sys.executable, "-m", "osint_capture", "--home", str(home)]
        subprocess.run([*cli, "keys", "init", "--operator", "Benchmark"], env=env, check=True,
                       capture_output=True)
        subprocess.run([*cli, "case", "open", "BENCH", "--title", "benchmark", "--category",
                        "online-crime", "--investigator", "bench", "--authority", "bench"],
                       env=env, check=True, capture_output=True)
        rows = []
        with SampleSite() as site:
            post = site.url("/post/1")
            media = site.url(f"/post/1/media?mib={args.media_mib}")
            plain = [asyncio.run(_plain_drive(post)) for _ in range(args.runs)]
            rows.append(_row("plain Playwright drive of /post/1 (no recording)", plain))
            runs = [_capture(env, home, "BENCH", post) for _ in range(args.runs)]
            rows.append(_row("capture /post/1 (the sample post, 40 comments)",
                             [r[0] for r in runs], [r[1] for r in runs]))
            runs = [_capture(env, home, "BENCH", media) for _ in range(max(3, args.runs // 2))]
            rows.append(_row(f"capture a page that loads a {args.media_mib} MiB body",
                             [r[0] for r in runs], [r[1] for r in runs]))
    print(f"machine: {platform.node()}, {os.cpu_count()} cores, {platform.platform()}, "
          f"Python {platform.python_version()}, {find_browser(None).version}")
    print()
    print("| scenario | runs | median | range | capture process peak RSS (median) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
