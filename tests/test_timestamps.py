"""RFC 3161 timestamps against a local TSA on 127.0.0.1 (tests/tsa.py): real Chromium
captures of the sample site, the real CLI, the real `openssl ts -verify`.

Two captures in all: one stamped as it is sealed, one made while the TSA is down (it is
then stamped by `osint-capture timestamp`). Every refusal is tested by stamping a copy
of that second, still unstamped, case.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody.timestamp import TimestampInvalid, load_certificates, verify_stamp
from osint_capture.demo.sample_site import SampleSite
from tests.conftest import Cli
from tests.tsa import Pki, _Server, down_url, make_pki, reply, running_tsa

pytestmark = pytest.mark.browser

STAMP = "manifest.json.sig.tsr"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("tsa-pki"))


@pytest.fixture(scope="module")
def tsa(pki: Pki) -> Iterator[_Server]:
    with running_tsa(pki) as server:
        yield server


@dataclass(frozen=True)
class Captured:
    case_id: str
    item_id: str
    data: dict[str, Any]

    def item(self, home: Path) -> Path:
        return home / self.case_id / "items" / self.item_id


@pytest.fixture(scope="module")
def stamped(cli: Cli, site: SampleSite, tsa: _Server, pki: Pki) -> Captured:
    case_id = cli.new_case()
    proc, data = cli.capture(
        site.url("/post/1"), case_id, "--tsa", tsa.url("good"), "--tsa-cert", str(pki.root)
    )
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    return Captured(case_id, data["item_id"], data)


@pytest.fixture(scope="module")
def awaiting(
    cli: Cli, site: SampleSite, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Captured, Path]:
    """A capture made while the only TSA is down, and a pristine copy of its case."""
    case_id = cli.new_case()
    proc, data = cli.capture(
        site.url("/post/1"),
        case_id,
        "--tsa",
        down_url(),
        "--tsa-cert",
        str(pki.root),
        "--tsa-timeout",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert data is not None
    pristine = tmp_path_factory.mktemp("awaiting") / case_id
    shutil.copytree(cli.home / case_id, pristine)
    return Captured(case_id, data["item_id"], data), pristine


def _home_with(case: Path, tmp_path: Path) -> Cli:
    """A fresh evidence home holding a copy of ``case``, for one test to change."""
    from tests.conftest import Cli as _Cli

    home = tmp_path / "home"
    shutil.copytree(case, home / case.name)
    return _Cli(home=home, env={})


def _run(cli: Cli, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return Cli(home=cli.home, env=env).run(*args, timeout=120)


def _stamp(
    cli: Cli, env: dict[str, str], case_id: str, tsa: _Server, pki: Pki, *modes: str
) -> subprocess.CompletedProcess[str]:
    """`osint-capture timestamp CASE_ID`, asking the test TSA in each mode in turn."""
    asked = [arg for mode in modes for arg in ("--tsa", tsa.url(mode))]
    return _run(cli, env, "timestamp", case_id, *asked, "--tsa-cert", str(pki.root))


def _standalone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chain_of_custody", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _openssl_verify(tsr: Path, data: Path, pki: Pki) -> subprocess.CompletedProcess[str]:
    """`openssl ts -verify` against the test root, the TSA's certificate supplied."""
    return _openssl_ts_verify(tsr, data, "-CAfile", str(pki.root), "-untrusted", str(pki.tsa_cert))


def _gen_time_epoch(tsr: Path) -> int:
    """The stamp's genTime in seconds since 1970, as `openssl ts -reply -text` shows it
    and `date -d … +%s` turns it (VERIFY.txt step 8's -attime)."""
    text = subprocess.run(
        ["openssl", "ts", "-reply", "-in", str(tsr), "-text"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    shown = text.split("Time stamp: ", 1)[1].splitlines()[0].strip()
    seconds = subprocess.run(
        ["date", "-d", shown, "+%s"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return int(seconds)


def _openssl_ts_verify(tsr: Path, data: Path, *trust: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", "ts", "-verify", "-in", str(tsr), "-data", str(data), *trust],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- a capture stamped as it is sealed -------------------------------------------------


def test_stamped_capture_passes_openssl_ts_verify(cli: Cli, stamped: Captured, pki: Pki) -> None:
    item = stamped.item(cli.home)
    assert stamped.data["timestamp"]["state"] == "timestamped"
    assert stamped.data["awaiting_timestamp"] is False
    result = _openssl_verify(item / STAMP, item / "manifest.json.sig", pki)
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout
    # ... and the same reply refused against the rogue root.
    rogue = _openssl_ts_verify(
        item / STAMP, item / "manifest.json.sig", "-CAfile", str(pki.rogue_root)
    )
    assert rogue.returncode != 0


def test_stamp_is_the_whole_reply_over_the_signature(cli: Cli, stamped: Captured, pki: Pki) -> None:
    item = stamped.item(cli.home)
    der = (item / STAMP).read_bytes()
    stamp = verify_stamp(
        der, (item / "manifest.json.sig").read_bytes(), roots=load_certificates([pki.root])
    )
    signature_sha = hashlib.sha256((item / "manifest.json.sig").read_bytes()).hexdigest()
    assert stamp.imprint_sha256 == signature_sha
    assert stamp.nonce is not None  # a fresh nonce was asked for, and answered
    # Listed in SHA256SUMS (sha256sum -c passes), not in the signed manifest.
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=item, capture_output=True, text=True, check=False
    )
    assert sums.returncode == 0, sums.stdout
    assert f"{STAMP}: OK" in sums.stdout
    manifest = json.loads((item / "manifest.json").read_bytes())
    assert STAMP not in {f["path"] for f in manifest["files"]}
    assert manifest["provenance"]["timestamp"]["tsa"] == [stamped.data["timestamp"]["tsa"]]
    # The custody event names the TSA, genTime, serial, policy and what was stamped.
    log = [json.loads(line) for line in (cli.home / stamped.case_id / "custody.jsonl").open()]
    (event,) = [e for e in log if e["action"] == "timestamped"]
    assert event["item_id"] == stamped.item_id
    assert event["details"]["stamped"] == "manifest.json.sig"
    assert event["details"]["stamped_sha256"] == signature_sha
    assert event["details"]["gen_time"] == stamp.gen_time_text
    assert event["details"]["serial_number"] == stamp.serial_hex
    assert event["details"]["policy"] == "1.2.3.4.1"
    assert event["details"]["tsr_sha256"] == hashlib.sha256(der).hexdigest()
    assert [e["action"] for e in log].index("captured") < [e["action"] for e in log].index(
        "timestamped"
    )


def test_both_verifiers_check_the_stamp(cli: Cli, stamped: Captured, pki: Pki) -> None:
    item = stamped.item(cli.home)
    weak = _standalone(str(item), "--json")
    assert weak.returncode == 0, weak.stdout + weak.stderr
    checks = {c["step"]: c for c in json.loads(weak.stdout)["checks"]}
    assert "weaker" in checks[13]["detail"]  # chained only to the reply's own root
    strong = _standalone(str(item), "--tsa-root", str(pki.root))
    assert strong.returncode == 0, strong.stdout
    assert "13. RFC 3161 timestamp verifies: genTime" in strong.stdout
    assert "chains to the given TSA roots" in strong.stdout
    assert "manifest created" in strong.stdout
    rogue = _standalone(str(item), "--tsa-root", str(pki.rogue_root))
    assert rogue.returncode == 1
    assert "does not chain to the trusted TSA roots" in rogue.stdout
    tool = cli.run("verify", str(item), "--no-record", "--tsa-root", str(pki.root), "--json")
    assert tool.returncode == 0, tool.stderr
    document = json.loads(tool.stdout)
    assert document["not_timestamped"] == []
    assert [c["step"] for c in document["checks"]][-1] == 13


def test_tampered_stamp_fails_both_verifiers(
    cli: Cli, stamped: Captured, pki: Pki, tmp_path: Path
) -> None:
    home = _home_with(cli.home / stamped.case_id, tmp_path)
    item = stamped.item(home.home)
    der = bytearray((item / STAMP).read_bytes())
    der[-3] ^= 0x40  # inside the TSA's signature
    (item / STAMP).write_bytes(bytes(der))
    alone = _standalone(str(item), "--tsa-root", str(pki.root))
    assert alone.returncode == 1
    assert "[FAIL] 13. RFC 3161 timestamp verifies" in alone.stdout
    assert "signature does not verify" in alone.stdout
    tool = _run(home, cli.env, "verify", str(item), "--no-record", "--tsa-root", str(pki.root))
    assert tool.returncode == 1
    assert tool.stderr.count("\n") == 1 and "Traceback" not in tool.stderr
    as_json = _run(
        home, cli.env, "verify", str(item), "--no-record", "--tsa-root", str(pki.root), "--json"
    )
    assert as_json.returncode == 1
    (step13,) = [c for c in json.loads(as_json.stdout)["checks"] if c["step"] == 13]
    assert step13["ok"] is False and "signature does not verify" in step13["detail"]


# -- a TSA that is down, then `osint-capture timestamp` --------------------------------


def test_tsa_down_leaves_the_item_sealed_and_awaiting(
    cli: Cli, awaiting: tuple[Captured, Path], tsa: _Server, pki: Pki, tmp_path: Path
) -> None:
    captured, pristine = awaiting
    assert captured.data["status"] in ("complete", "partial")
    assert captured.data["awaiting_timestamp"] is True
    assert "Connection refused" in captured.data["timestamp"]["detail"]
    home = _home_with(pristine, tmp_path)
    item = captured.item(home.home)
    assert not (item / STAMP).exists()
    show = _run(home, cli.env, "case", "show", captured.case_id)
    assert show.returncode == 0, show.stderr
    assert "[awaiting a timestamp]" in show.stdout
    # Sealed evidence: it verifies, and is reported "not timestamped" (not a failure).
    alone = _standalone(str(home.home / captured.case_id))
    assert alone.returncode == 0, alone.stdout
    assert "not timestamped" in alone.stdout
    # A bundle made meanwhile says the stamp is still to come, not that none was wanted.
    bundle = tmp_path / "awaiting.zip"
    made = _run(home, cli.env, "export", captured.case_id, "--out", str(bundle), "--recipient", "R")
    assert made.returncode == 0, made.stderr
    with zipfile.ZipFile(bundle) as archive:
        html = archive.read("report.html").decode("utf-8")
    row = html.split("Trusted timestamp (RFC 3161)", 1)[1].split("</tr>", 1)[0]
    assert "none yet" in row and "not timestamped" not in row, row
    done = _stamp(home, cli.env, captured.case_id, tsa, pki, "good")
    assert done.returncode == 0, done.stderr
    assert f"stamped item {captured.item_id}" in done.stdout
    assert "stamped custody head" in done.stdout
    ok = _openssl_verify(item / STAMP, item / "manifest.json.sig", pki)
    assert ok.returncode == 0 and "Verification: OK" in ok.stdout
    heads = sorted((home.home / captured.case_id / "timestamps").glob("*.tsr"))
    assert len(heads) == 1
    head_ok = _openssl_verify(heads[0], heads[0].with_suffix(""), pki)
    assert head_ok.returncode == 0, head_ok.stderr
    show = _run(home, cli.env, "case", "show", captured.case_id)
    assert "[awaiting a timestamp]" not in show.stdout
    case = _standalone(str(home.home / captured.case_id), "--tsa-root", str(pki.root), "--json")
    assert case.returncode == 0, case.stdout
    document = json.loads(case.stdout)
    assert {c["step"] for c in document["checks"]} >= {13, 14}
    assert document["not_timestamped"] == []


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("other-imprint", "for another imprint"),
        ("broken-signature", "signature does not verify"),
        ("untrusted", "does not chain to the trusted TSA roots"),
        ("not-granted", "did not grant"),
    ],
)
def test_bad_reply_is_refused_never_stored_and_the_next_tsa_tried(
    cli: Cli,
    awaiting: tuple[Captured, Path],
    tsa: _Server,
    pki: Pki,
    tmp_path: Path,
    mode: str,
    why: str,
) -> None:
    captured, pristine = awaiting
    home = _home_with(pristine, tmp_path)
    item = captured.item(home.home)
    sums_before = (item / "SHA256SUMS").read_bytes()
    only_bad = _stamp(home, cli.env, captured.case_id, tsa, pki, mode)
    assert only_bad.returncode == 4
    assert only_bad.stderr.count("\n") == 1 and "Traceback" not in only_bad.stderr
    assert why in only_bad.stderr
    assert not (item / STAMP).exists()
    assert (item / "SHA256SUMS").read_bytes() == sums_before
    assert not list((home.home / captured.case_id).glob("timestamps/*.tsr"))
    then_good = _stamp(home, cli.env, captured.case_id, tsa, pki, mode, "good")
    assert then_good.returncode == 0, then_good.stderr
    der = (item / STAMP).read_bytes()
    verify_stamp(
        der, (item / "manifest.json.sig").read_bytes(), roots=load_certificates([pki.root])
    )
    log = (home.home / captured.case_id / "custody.jsonl").read_text()
    assert tsa.url("good") in log and tsa.url(mode) not in log


def test_reply_with_only_the_tsa_certificate_is_accepted(
    cli: Cli, awaiting: tuple[Captured, Path], tsa: _Server, pki: Pki, tmp_path: Path
) -> None:
    captured, pristine = awaiting
    home = _home_with(pristine, tmp_path)
    done = _stamp(home, cli.env, captured.case_id, tsa, pki, "leaf")
    assert done.returncode == 0, done.stderr
    item = captured.item(home.home)
    ok = _openssl_verify(item / STAMP, item / "manifest.json.sig", pki)
    assert ok.returncode == 0, ok.stderr
    # The reply carries no root: the standalone verifier needs --tsa-root, and says so.
    weak = _standalone(str(item))
    assert weak.returncode == 1 and "--tsa-root" in weak.stdout
    strong = _standalone(str(item), "--tsa-root", str(pki.root))
    assert strong.returncode == 0, strong.stdout


def test_reply_without_certificates_checks_with_the_given_tsa_certificate(
    pki: Pki, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"the signature bytes")
    query = tmp_path / "q.tsq"
    subprocess.run(  # no -cert: the TSA includes no certificate at all
        ["openssl", "ts", "-query", "-data", str(data), "-sha256", "-out", str(query)],
        check=True,
        capture_output=True,
    )
    der = reply(pki, query.read_bytes(), "leaf")
    with pytest.raises(TimestampInvalid, match="neither in the reply"):
        verify_stamp(der, data.read_bytes(), roots=load_certificates([pki.root]))
    stamp = verify_stamp(der, data.read_bytes(), roots=load_certificates([pki.root, pki.tsa_cert]))
    assert stamp.imprint_sha256 == hashlib.sha256(data.read_bytes()).hexdigest()


def test_tsa_options_are_checked_before_anything_is_sent(
    cli: Cli, awaiting: tuple[Captured, Path], tsa: _Server, tmp_path: Path
) -> None:
    captured, pristine = awaiting
    home = _home_with(pristine, tmp_path)
    before = len(tsa.requests)
    for args, message in (
        (("--tsa", tsa.url("good")), "--tsa needs --tsa-cert"),
        (("--tsa", "ftp://127.0.0.1/x", "--tsa-cert", str(tmp_path)), "not an http"),
        (("--tsa", tsa.url("good"), "--tsa-cert", str(tmp_path / "none.pem")), "--tsa-cert"),
        ((), "no TSA configured"),
    ):
        result = _run(home, cli.env, "timestamp", captured.case_id, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    bad_root = _standalone(str(home.home), "--tsa-root", str(tmp_path / "none.pem"))
    assert bad_root.returncode == 2 and bad_root.stderr.count("\n") == 1
    assert len(tsa.requests) == before


# -- the export bundle ------------------------------------------------------------------


def test_bundle_carries_a_stamped_custody_head(
    cli: Cli, stamped: Captured, tsa: _Server, pki: Pki, tmp_path: Path
) -> None:
    # The case's own head stamped first (`timestamp`): the bundle carries that stamp too.
    earlier = _stamp(cli, cli.env, stamped.case_id, tsa, pki, "good")
    assert earlier.returncode == 0, earlier.stderr
    [case_stamp] = sorted((cli.home / stamped.case_id / "timestamps").glob("*.tsr"))
    case_stamp_name = f"timestamps/{case_stamp.name}"
    case_head_name = case_stamp_name.removesuffix(".tsr")
    out = tmp_path / "bundle.zip"
    result = cli.run(
        "export",
        stamped.case_id,
        "--out",
        str(out),
        "--recipient",
        "ADA J. Lee",
        "--tsa",
        tsa.url("good"),
        "--tsa-cert",
        str(pki.root),
    )
    assert result.returncode == 0, result.stderr
    assert "head stamp:   custody.head.tsr" in result.stdout
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(out) as bundle:
        names = set(bundle.namelist())
        bundle.extractall(folder)
    assert "custody.head.tsr" in names
    assert f"items/{stamped.item_id}/{STAMP}" in names
    assert {case_stamp_name, case_head_name} <= names
    assert (folder / case_stamp_name).read_bytes() == case_stamp.read_bytes()
    # The report shows what the item's stamp says, as checked before export.
    html = (folder / "report.html").read_text("utf-8")
    row = html.split("Trusted timestamp (RFC 3161)", 1)[1].split("</tr>", 1)[0]
    assert "genTime 20" in row and "signature verifies" in row, row
    assert f"items/{stamped.item_id}/{STAMP}" in row
    assert "not timestamped" not in html
    ok = _openssl_verify(folder / "custody.head.tsr", folder / "custody.head", pki)
    assert ok.returncode == 0, ok.stderr
    head_row = html.split("Custody head timestamp (RFC 3161)", 1)[1].split("</tr>", 1)[0]
    assert "custody.head.tsr" in head_row and "genTime 20" in head_row, head_row
    # VERIFY.txt's openssl commands check both stamps, given the TSA's root as it says.
    verify_text = (folder / "VERIFY.txt").read_text("utf-8")
    commands = [
        line.split()
        for line in verify_text.splitlines()
        if line.strip().startswith("openssl ts -verify")
    ]
    stamped_files = {c[c.index("-in") + 1] for c in commands}
    assert stamped_files == {
        "custody.head.tsr",
        f"items/{stamped.item_id}/{STAMP}",
        case_stamp_name,
    }
    for command in commands:
        command[command.index("TSA-ROOT.pem")] = str(pki.root)
        run = subprocess.run(
            command, cwd=folder, capture_output=True, text=True, timeout=60, check=False
        )
        assert run.returncode == 0 and "Verification: OK" in run.stdout, (command, run.stderr)
        # With the additions step 8 describes: the TSA's own certificate, and the time
        # it stamped at (as for a TSA certificate that has expired since).
        gen_time = _gen_time_epoch(folder / command[command.index("-in") + 1])
        added = [*command, "-untrusted", str(pki.tsa_cert), "-attime", str(gen_time)]
        run = subprocess.run(
            added, cwd=folder, capture_output=True, text=True, timeout=60, check=False
        )
        assert run.returncode == 0 and "Verification: OK" in run.stdout, (added, run.stderr)
    assert "-untrusted" in verify_text and "-attime" in verify_text
    listed = json.loads((folder / "bundle-manifest.json").read_bytes())["files"]
    media = {f["path"]: f["media_type"] for f in listed}
    assert media["custody.head.tsr"] == media[case_stamp_name] == "application/timestamp-reply"
    assert media[case_head_name] == "application/json"
    sums = (folder / "SHA256SUMS").read_text("utf-8")
    assert case_stamp_name in sums and case_head_name in sums
    alone = _standalone(str(out), "--tsa-root", str(pki.root))
    assert alone.returncode == 0, alone.stdout
    assert "14. custody head timestamp verifies: custody.head.tsr: genTime" in alone.stdout
    assert f"14. custody head timestamp verifies: {case_stamp_name}: genTime" in alone.stdout
    # A stamp of another head in its place: caught (and the signed bundle manifest too).
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(out) as src, zipfile.ZipFile(tampered, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "custody.head.tsr":
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(info, data)
    bad = _standalone(str(tampered), "--tsa-root", str(pki.root))
    assert bad.returncode == 1
    assert "[FAIL] 14. custody head timestamp verifies" in bad.stdout


def test_export_refuses_a_case_head_stamp_that_stamps_nothing_it_holds(
    cli: Cli, awaiting: tuple[Captured, Path], tsa: _Server, pki: Pki, tmp_path: Path
) -> None:
    """The case's own head stamps are checked, as far as no TSA certificate is needed,
    before the export logs anything: a stamp that is no reply, one over other bytes than
    its head copy, or a link in its place stops it (exit 1), nothing written or logged.
    (Its TSA's signature is the recipient's to check, against the TSA's root.)"""
    captured, pristine = awaiting
    home = _home_with(pristine, tmp_path)
    stamped = _stamp(home, cli.env, captured.case_id, tsa, pki, "good")
    assert stamped.returncode == 0, stamped.stderr
    case_dir = home.home / captured.case_id
    [stamp] = sorted((case_dir / "timestamps").glob("*.tsr"))
    copy = stamp.with_suffix("")
    good, good_copy = stamp.read_bytes(), copy.read_bytes()
    elsewhere = tmp_path / "elsewhere.tsr"
    elsewhere.write_bytes(good)

    def linked() -> None:
        stamp.unlink()
        stamp.symlink_to(elsewhere)

    for damage, said in (
        (lambda: stamp.write_bytes(good[: len(good) // 2]), "does not check"),
        (lambda: copy.write_bytes(good_copy.replace(b'"seq":', b'"seq": ')), "another imprint"),
        (linked, "symbolic link"),
    ):
        damage()
        log_before = (case_dir / "custody.jsonl").read_bytes()
        out = tmp_path / "bundle.zip"
        made = _run(
            home, cli.env, "export", captured.case_id, "--out", str(out), "--recipient", "R"
        )
        assert made.returncode == 1, made.stderr
        assert said in made.stderr and stamp.name in made.stderr, made.stderr
        assert made.stderr.count("\n") <= 2 and "Traceback" not in made.stderr
        assert not out.exists()
        assert (case_dir / "custody.jsonl").read_bytes() == log_before
        stamp.unlink()
        stamp.write_bytes(good)
        copy.write_bytes(good_copy)
    # Whole again, it is exported.
    out = tmp_path / "bundle.zip"
    made = _run(home, cli.env, "export", captured.case_id, "--out", str(out), "--recipient", "R")
    assert made.returncode == 0, made.stderr
    with zipfile.ZipFile(out) as bundle:
        assert bundle.read(f"timestamps/{stamp.name}") == good
