"""Shared fixtures: a signing key, an evidence home, the sample site, and the CLI.

Every browser test drives real Chromium through the real command line against the
bundled sample site on 127.0.0.1: no mocked browser, no other address.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from osint_capture.demo.sample_site import SampleSite

PASSPHRASE = "correct horse battery staple"
OPERATOR = "Det. Sam Rivera"
_CLI = [sys.executable, "-m", "osint_capture"]
_case_numbers = itertools.count(1)


@dataclass
class Cli:
    """Runs `osint-capture` as a user would, in its own process."""

    home: Path
    env: dict[str, str]
    runs: list[list[str]] = field(default_factory=list)

    def argv(self, *args: str) -> list[str]:
        """The command line of ``osint-capture --home HOME ARGS``, for a process of its own."""
        return [*_CLI, "--home", str(self.home), *args]

    def run(
        self,
        *args: str,
        timeout: float = 240,
        env: dict[str, str] | None = None,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        argv = self.argv(*args)
        self.runs.append(argv)
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(env or {})},
            input=input,
            check=False,
        )

    def ok(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        proc = self.run(*args, **kw)
        assert proc.returncode == 0, f"{args} exited {proc.returncode}: {proc.stderr}"
        return proc

    def new_case(self, category: str = "missing-person") -> str:
        case_id = f"T-{os.getpid()}-{next(_case_numbers):03d}"
        self.ok(
            "case",
            "open",
            case_id,
            "--title",
            "Test case",
            "--category",
            category,
            "--investigator",
            "Det. Alex Moreno",
            "--authority",
            "Lt. J. Park, approval 26-114",
        )
        return case_id

    def capture(
        self, url: str, case_id: str, *extra: str
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
        proc = self.run(
            "capture", url, "--case", case_id, "--allow-private-network", "--json", *extra
        )
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
        return proc, data


@pytest.fixture(scope="session")
def key_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    key_dir = tmp_path_factory.mktemp("keys")
    env = dict(os.environ)
    env.update(
        OSINT_CAPTURE_KEY_DIR=str(key_dir),
        OSINT_CAPTURE_PASSPHRASE=PASSPHRASE,
        PYTHONUNBUFFERED="1",
    )
    env.pop("OSINT_CAPTURE_HOME", None)
    subprocess.run(
        [*_CLI, "keys", "init", "--operator", OPERATOR],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return env


@pytest.fixture(scope="session")
def cli(tmp_path_factory: pytest.TempPathFactory, key_env: dict[str, str]) -> Cli:
    return Cli(home=tmp_path_factory.mktemp("evidence"), env=key_env)


@pytest.fixture(scope="session")
def site() -> Iterator[SampleSite]:
    with SampleSite() as running:
        yield running


@pytest.fixture(scope="session")
def public_key(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pub") / "operator.pub.pem"
    cli.ok("keys", "export", "--out", str(out))
    return out


# The slowest test files (most of their time is spent waiting on pages), run first: with
# `make test`'s two workers taking one file at a time, the long ones then overlap each
# other instead of one of them running alone at the end.
_SLOW_FIRST = (
    "test_capture_edges.py",
    "test_capture_robustness.py",
    "test_durability_and_custody_cli.py",
    "test_export.py",
    "test_lawful_access.py",
    "test_access_table.py",
    "test_capture_batch.py",
    "test_timestamps.py",
    "test_wacz.py",
    "test_verify_cli.py",
    "test_doctor.py",
    "test_capture_session.py",
    "test_capture_post.py",
    "test_request_gate.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(_SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
