"""`osint-capture demo` captures the sample post, verifies it, and ends by exporting the
demo case, verifying the bundle, and printing its path (real Chromium against the
bundled sample site on 127.0.0.1)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.browser


def test_the_demo_ends_with_a_verified_bundle_and_its_path(cli: Cli, tmp_path: Path) -> None:
    home = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "osint_capture", "--home", str(home), "demo"],
        capture_output=True,
        text=True,
        env={**cli.env, "OSINT_CAPTURE_KEY_DIR": str(tmp_path / "k")},
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("Bundle: "), proc.stdout[-1500:]
    bundle = Path(last.removeprefix("Bundle: "))
    assert bundle.parent == tmp_path / "demo-exports" and bundle.suffix == ".zip"
    assert "verify bundle 11. ok" in proc.stdout
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert "report.pdf" in names and "bundle-manifest.json" in names
    check = subprocess.run(
        [sys.executable, "-m", "chain_of_custody", "verify", str(bundle)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout[-2000:]
    # The demo's capture itself (one run serves both: the demo is the slowest command).
    assert "Verified" in proc.stdout
    items = list(home.glob("DEMO-*/items/*/manifest.json"))
    assert len(items) == 1
    assert not (tmp_path / "k").exists(), "the demo never touches the operator's key folder"
