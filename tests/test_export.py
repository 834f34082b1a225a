"""`osint-capture export`: a bundle of two real captures (real Chromium, 127.0.0.1) that
standard tools and both verifiers accept, that fails when any member is changed, removed
or added, whose report reads right, and whose recorded custody head anchors the home's
log (`verify CASE --against`).
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from chain_of_custody.report import examine_path
from osint_capture.demo.sample_site import SampleSite
from tests.conftest import Cli

pytestmark = pytest.mark.browser

RECIPIENT = "ADA Jordan Lee, County Prosecutor's Office"
REASON = "discovery, People v. Doe"
_BLOCKED = ("playwright", "typer", "rich", "jinja2", "osint_capture", "cases")
_BLOCKING_RUNNER = f"""
import runpy, sys
class Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {_BLOCKED!r}:
            raise ImportError(f"{{name}} is blocked for this test")
        return None
sys.meta_path.insert(0, Blocked())
sys.argv = ["chain_of_custody", *sys.argv[1:]]
runpy.run_module("chain_of_custody", run_name="__main__")
"""


def _standalone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKING_RUNNER, "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def exported(
    cli: Cli, site: SampleSite, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One case, two captures, its log as it stood before the export, and the bundle."""
    case_id = cli.new_case()
    captures = []
    for path in ("/post/1", "/post/1?ref=share"):
        proc, data = cli.capture(site.url(path), case_id)
        assert proc.returncode == 0 and data is not None, proc.stderr
        captures.append(data)
    case_dir = cli.home / case_id
    before = {n: (case_dir / n).read_bytes() for n in ("custody.jsonl", "custody.head")}
    out = tmp_path_factory.mktemp("bundles") / f"{case_id}.zip"
    proc = cli.ok(
        "export", case_id, "--out", str(out), "--recipient", RECIPIENT, "--reason", REASON
    )
    assert str(out) in proc.stdout
    return {"case_id": case_id, "captures": captures, "out": out, "before": before}


def _unzip(bundle: Path, where: Path) -> Path:
    where.mkdir(parents=True)
    # A plain unzip; where Info-ZIP's is not installed, Python's own command-line one.
    unzip = ["unzip", "-q", str(bundle), "-d", str(where)]
    if shutil.which("unzip") is None:
        unzip = [sys.executable, "-m", "zipfile", "-e", str(bundle), str(where)]
    subprocess.run(unzip, check=True, timeout=60)
    return where


def _failing(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in document["checks"] if not c["ok"]]


def _rezip(bundle: Path, out: Path, change: dict[str, bytes | None]) -> Path:
    """A copy of the bundle with members replaced (bytes), removed (None) or added."""
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            if info.filename in change:
                data = change[info.filename]
                if data is not None:
                    target.writestr(info, data)
            else:
                target.writestr(info, source.read(info))
        names = set(source.namelist())
        for name, data in change.items():
            if name not in names and data is not None:
                target.writestr(name, data)
    return out


def _flipped(data: bytes) -> bytes:
    if not data:  # an empty file (robots.txt can be) changes by gaining a byte
        return b"\x00"
    changed = bytearray(data)
    changed[len(changed) // 2] ^= 0x01
    return bytes(changed)


def test_the_bundle_passes_sha256sum_and_openssl_after_a_plain_unzip(
    cli: Cli, exported: dict[str, Any], tmp_path: Path
) -> None:
    with zipfile.ZipFile(exported["out"]) as archive:
        infos = archive.infolist()
    assert all(info.compress_type == zipfile.ZIP_STORED for info in infos)
    names = {info.filename for info in infos}
    for name in (
        "case.json",
        "custody.jsonl",
        "custody.head",
        "SHA256SUMS",
        "bundle-manifest.json",
        "bundle-manifest.json.sig",
        "report.html",
        "report.pdf",
        "certification-fre-902.txt",
        "VERIFY.txt",
    ):
        assert name in names, name
    root = _unzip(exported["out"], tmp_path / "bundle")
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=root, capture_output=True, text=True, check=False
    )
    assert sums.returncode == 0, sums.stdout + sums.stderr
    assert sums.stdout.count(": OK") == len(names) - 1
    # Every file of every item is byte for byte the one in the home.
    for capture in exported["captures"]:
        item_dir = Path(capture["item_dir"])
        for path in item_dir.iterdir():
            assert (root / "items" / item_dir.name / path.name).read_bytes() == path.read_bytes()
    commands = [
        line.strip()
        for line in (root / "VERIFY.txt").read_text().splitlines()
        if line.strip().startswith("openssl dgst")
    ]
    assert len(commands) == 1 + len(exported["captures"])  # the bundle's, each item's
    # Nothing here is timestamped: no openssl ts step, and the report says why.
    assert "openssl ts" not in (root / "VERIFY.txt").read_text()
    html = (root / "report.html").read_text("utf-8")
    head_row = html.split("Custody head timestamp (RFC 3161)", 1)[1].split("</tr>", 1)[0]
    assert "none: no TSA configured" in head_row, head_row
    assert any("bundle-manifest.json.sig bundle-manifest.json" in c for c in commands)
    for command in commands:
        run = subprocess.run(
            command.split(), cwd=root, capture_output=True, text=True, check=False, timeout=30
        )
        assert run.returncode == 0 and "Verified OK" in run.stdout, (command, run.stderr)
    manifest = json.loads((root / "bundle-manifest.json").read_text())
    assert manifest["recipient"] == RECIPIENT and manifest["reason"] == REASON
    assert manifest["items"] == sorted(c["item_id"] for c in exported["captures"])
    listed = {f["path"] for f in manifest["files"]}
    assert listed == names - {"bundle-manifest.json", "bundle-manifest.json.sig", "SHA256SUMS"}
    # The bundle's log ends with this export's own entry, which its head names.
    last = json.loads((root / "custody.jsonl").read_text().splitlines()[-1])
    assert last["action"] == "exported" and last["seq"] == manifest["custody_head"]["seq"]
    assert last["details"] == {
        "recipient": RECIPIENT,
        "reason": REASON,
        "items": manifest["items"],
        "bundle": exported["out"].name,
    }
    head = json.loads((root / "custody.head").read_text())
    assert head["head_sha256"] == manifest["custody_head"]["head_sha256"]
    assert {p.name for p in (root / "keys").iterdir()} == {f"{last['signer']['fingerprint']}.pem"}


def test_both_verifiers_pass_the_bundle(cli: Cli, exported: dict[str, Any]) -> None:
    bundle = str(exported["out"])
    for proc in (cli.run("verify", bundle, "--json"), _standalone(bundle, "--json")):
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr
        document = json.loads(proc.stdout)
        assert document["kind"] == "bundle" and document["ok"]
        (step11,) = [c for c in document["checks"] if c["step"] == 11]
        assert RECIPIENT in step11["detail"]
    human = _standalone(bundle)
    assert human.returncode == 0 and "11. bundle manifest" in human.stdout
    assert human.stdout.rstrip().endswith("VERIFIED")


def test_any_member_changed_removed_or_added_fails_naming_it(
    cli: Cli, exported: dict[str, Any], tmp_path: Path
) -> None:
    bundle = exported["out"]
    with zipfile.ZipFile(bundle) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    cases: list[tuple[str, str, dict[str, bytes | None]]] = []
    for name, data in members.items():
        cases.append((f"flip {name}", name, {name: _flipped(data)}))
        cases.append((f"remove {name}", name, {name: None}))
    cases.append(("add notes.txt", "notes.txt", {"notes.txt": b"added later"}))
    item = next(n for n in members if n.startswith("items/"))
    added = item.rsplit("/", 1)[0] + "/extra.png"
    cases.append((f"add {added}", added, {added: b"\x89PNG"}))
    for number, (label, name, change) in enumerate(cases):
        copy = _rezip(bundle, tmp_path / f"{number}.zip", change)
        verdict = examine_path(copy).verdict
        assert not verdict.ok, label
        details = " ".join(c.detail for c in verdict.checks if not c.ok)
        assert name in details, (label, details[:500])
    # The same through both command lines, for a few of them.
    warc = next(n for n in members if n.endswith("archive.warc.gz"))
    for label, name, change in (
        ("flip", warc, {warc: _flipped(members[warc])}),
        ("flip", "report.pdf", {"report.pdf": _flipped(members["report.pdf"])}),
        ("remove", "bundle-manifest.json.sig", {"bundle-manifest.json.sig": None}),
        ("add", "notes.txt", {"notes.txt": b"added later"}),
    ):
        copy = _rezip(bundle, tmp_path / f"cli-{label}-{Path(name).name}.zip", change)
        for proc in (cli.run("verify", str(copy), "--json"), _standalone(str(copy), "--json")):
            assert proc.returncode == 1, (label, name, proc.stderr)
            failing = _failing(json.loads(proc.stdout))
            assert any(name in c["detail"] for c in failing), (label, name, failing)


def test_the_report_pdf_names_urls_hashes_recipient_and_custody_events(
    exported: dict[str, Any],
) -> None:
    with zipfile.ZipFile(exported["out"]) as archive:
        pdf = archive.read("report.pdf")
        html = archive.read("report.html").decode("utf-8")
        certification = archive.read("certification-fre-902.txt").decode("utf-8")
        manifests = [
            json.loads(archive.read(f"items/{c['item_id']}/manifest.json"))
            for c in exported["captures"]
        ]
    assert pdf.startswith(b"%PDF-") and b"Skia/PDF" in pdf  # printed by Chromium
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)
    texts = [text]
    if shutil.which("pdftotext"):
        texts.append(
            subprocess.run(
                ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
            ).stdout.decode("utf-8")
        )
    for extracted in texts:
        for capture, manifest in zip(exported["captures"], manifests, strict=True):
            assert capture["requested_url"] in extracted
            warc = next(f for f in manifest["files"] if f["path"] == "archive.warc.gz")
            assert warc["sha256"] in extracted
            assert warc["sha256"] in certification
        assert RECIPIENT.split(",")[0] in extracted
        for action in ("case-opened", "captured", "exported"):
            assert action in extracted
        assert "FRE 902(13), 902(14)" in extracted
        assert "lab-only private-network override" in extracted
    # Right-to-left page text is marked so in the HTML the PDF is printed from.
    assert 'dir="auto"' in html and "مفقود" in html
    assert "Signature: ____" in certification
    # No TSA was configured: each item says so rather than leaving the row out.
    assert html.count("none: the item was not timestamped") == len(exported["captures"])


def test_verify_against_the_bundle_fails_once_the_home_log_is_rolled_back(
    cli: Cli, exported: dict[str, Any], tmp_path: Path
) -> None:
    case_id, bundle = exported["case_id"], str(exported["out"])
    proc = cli.ok("verify", case_id, "--against", bundle, "--no-record", "--json")
    (step12,) = [c for c in json.loads(proc.stdout)["checks"] if c["step"] == 12]
    assert step12["ok"]
    # A copy of the case whose log and head were both put back to before the export:
    # a genuine older pair, which the case's own checks cannot tell from the present.
    home = tmp_path / "rolled-back"
    shutil.copytree(cli.home / case_id, home / case_id)
    for name, data in exported["before"].items():
        (home / case_id / name).write_bytes(data)
    rolled = Cli(home=home, env=cli.env)
    alone = rolled.run("verify", case_id, "--no-record", "--json")
    assert alone.returncode == 0, alone.stderr
    proc = rolled.run("verify", case_id, "--against", bundle, "--no-record", "--json")
    assert proc.returncode == 1
    (failed,) = _failing(json.loads(proc.stdout))
    assert failed["step"] == 12 and "cut back or rolled back" in failed["detail"]
    assert "step 12" in proc.stderr


def test_refusals_are_usage_errors_or_name_the_failed_item(
    cli: Cli, exported: dict[str, Any], tmp_path: Path
) -> None:
    case_id = exported["case_id"]
    out = tmp_path / "b.zip"
    base = ("--recipient", RECIPIENT)
    assert cli.run("export", "NO-SUCH-CASE", "--out", str(out), *base).returncode == 2
    unknown = cli.run(
        "export", case_id, "--out", str(out), *base, "--items", "20991231T000000Z-00000000"
    )
    assert unknown.returncode == 2 and "20991231T000000Z-00000000" in unknown.stderr
    inside = cli.run("export", case_id, "--out", str(cli.home / "x.zip"), *base)
    assert inside.returncode == 2 and "inside the evidence home" in inside.stderr
    out.write_bytes(b"already here")
    taken = cli.run("export", case_id, "--out", str(out), *base)
    assert taken.returncode == 2 and "--force" in taken.stderr
    assert out.read_bytes() == b"already here"
    assert not list(tmp_path.glob(".tmp-*"))

    # A damaged item in a copy of the case: refused, naming item and check, nothing
    # written and nothing logged.
    home = tmp_path / "damaged"
    shutil.copytree(cli.home / case_id, home / case_id)
    damaged = Cli(home=home, env=cli.env)
    item = exported["captures"][1]["item_id"]
    text = home / case_id / "items" / item / "text.txt"
    text.write_bytes(_flipped(text.read_bytes()))
    log_before = (home / case_id / "custody.jsonl").read_bytes()
    target = tmp_path / "damaged.zip"
    proc = damaged.run("export", case_id, "--out", str(target), *base)
    assert proc.returncode == 1
    assert item in proc.stderr and "step 4" in proc.stderr and "text.txt" in proc.stderr
    assert not target.exists() and not list(tmp_path.glob(".tmp-*"))
    assert (home / case_id / "custody.jsonl").read_bytes() == log_before

    # One item only, from a closed case, over the file already there with --force.
    good = exported["captures"][0]["item_id"]
    damaged.ok("case", "close", case_id)
    damaged.ok("export", case_id, "--out", str(out), *base, "--items", good, "--force")
    with zipfile.ZipFile(out) as archive:
        items = {n.split("/")[1] for n in archive.namelist() if n.startswith("items/")}
    assert items == {good}
    assert examine_path(out).verdict.ok
