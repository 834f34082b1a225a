"""WACZ export, its verification, and replay in ReplayWeb.page (issue 16).

Two real captures of the sample post (Chromium against the sample site on 127.0.0.1)
are exported once with `osint-capture export --format wacz`; every test reads that
package (copies are made where one is changed). ReplayWeb.page is the one `make install`
put in the virtual environment, served on 127.0.0.1 by osint_capture.replay.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import struct
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cases.store import EvidenceStore
from chain_of_custody.report import examine_path
from chain_of_custody.signing import fingerprint_of_key_file
from chain_of_custody.wacz import der_signature, raw_signature
from osint_capture.demo.sample_site import SampleSite
from osint_capture.demo.sample_site.server import (
    COMMENT_PAGES,
    COMMENTS_PER_PAGE,
    POST_AUTHOR,
    POST_HEADLINE,
)
from osint_capture.replay import ReplayServer, open_source, replay_assets
from tests.conftest import Cli
from tests.replaying import read_replay

pytestmark = pytest.mark.browser

_STANDALONE = [sys.executable, "-m", "chain_of_custody", "verify"]
_BLOCKED = ("playwright", "typer", "rich", "osint_capture", "cases")
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
_TOTAL = COMMENT_PAGES * COMMENTS_PER_PAGE


@pytest.fixture(scope="module")
def exported(
    cli: Cli, site: SampleSite, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """One case, two captures, its bundle and its WACZ."""
    case_id = cli.new_case()
    captures = []
    for path in ("/post/1", "/post/1?ref=share"):
        proc, data = cli.capture(site.url(path), case_id)
        assert proc.returncode == 0 and data is not None, proc.stderr
        captures.append(data)
    # A bundle of the same case first, for `replay`; the WACZ's export is the log's last.
    bundle = tmp_path_factory.mktemp("bundle") / f"{case_id}.zip"
    cli.ok("export", case_id, "--out", str(bundle), "--recipient", "ADA J. Lee")
    out = tmp_path_factory.mktemp("wacz") / f"{case_id}.wacz"
    proc = cli.ok(
        "export",
        case_id,
        "--format",
        "wacz",
        "--out",
        str(out),
        "--recipient",
        "ADA J. Lee",
        "--reason",
        "discovery",
    )
    assert "WACZ 1.1.1" in proc.stdout
    return {"case_id": case_id, "captures": captures, "wacz": out, "bundle": bundle}


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as package:
        return {info.filename: package.read(info) for info in package.infolist()}


def _write(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as package:
        for name, data in members.items():
            package.writestr(name, data)
    return path


def _standalone(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKING_RUNNER, "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_package_is_a_wacz_that_py_wacz_accepts(exported: dict[str, Any], cli: Cli) -> None:
    wacz = exported["wacz"]
    proc = subprocess.run(
        [sys.executable, "-m", "wacz", "validate", "-f", str(wacz)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0 and "Validation succeeded" in proc.stdout, proc.stdout + proc.stderr
    members = _members(wacz)
    ids = [c["item_id"] for c in exported["captures"]]
    for capture in exported["captures"]:
        # Byte for byte the WARC that was captured and signed.
        warc = Path(capture["warc"]).read_bytes()
        assert members[f"archive/{capture['item_id']}.warc.gz"] == warc
        assert f"osint-capture/{capture['item_id']}.manifest.json" in members
    package = json.loads(members["datapackage.json"])
    assert package["wacz_version"] == "1.1.1" and "mainPageURL" not in package  # two items
    assert package["osint_capture"]["case_id"] == exported["case_id"]
    assert package["osint_capture"]["items"] == sorted(ids)
    pages = [json.loads(line) for line in members["pages/pages.jsonl"].splitlines()]
    assert pages[0]["format"] == "json-pages-1.0"
    assert {p["url"] for p in pages[1:]} == {c["final_url"] for c in exported["captures"]}
    index = members["indexes/index.cdx"].decode()
    assert index.splitlines() == sorted(index.splitlines())
    assert all(f'"filename": "{i}.warc.gz"' in index for i in ids)
    digest = json.loads(members["datapackage-digest.json"])
    assert set(digest["signedData"]) == {"hash", "created", "software", "signature", "publicKey"}
    # The release is on record like any export.
    log = (cli.home / exported["case_id"] / "custody.jsonl").read_text().splitlines()
    entry = json.loads(log[-1])
    assert entry["action"] == "exported"
    assert entry["details"] == {
        "recipient": "ADA J. Lee",
        "reason": "discovery",
        "items": sorted(ids),
        "bundle": wacz.name,
        "format": "wacz",
    }


def test_the_signature_verifies_as_wabac_js_checks_it(
    exported: dict[str, Any], public_key: Path, tmp_path: Path
) -> None:
    signed = json.loads(_members(exported["wacz"])["datapackage-digest.json"])["signedData"]
    raw = base64.b64decode(signed["signature"])
    assert len(raw) == 96  # r‖s, not DER
    key = serialization.load_der_public_key(base64.b64decode(signed["publicKey"]))
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    key.verify(der_signature(raw), signed["hash"].encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    assert raw_signature(der_signature(raw)) == raw
    # The operator's own key, the one `keys export` gives verifiers.
    exported_pem = serialization.load_pem_public_key(public_key.read_bytes())
    assert exported_pem.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == base64.b64decode(signed["publicKey"])
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the WebCrypto check was not run")
    script = tmp_path / "verify.mjs"
    # Exactly wabac.js's certutils.verifyWACZSignature, anonymous form.
    script.write_text(
        """
const signed = JSON.parse(process.argv[2]);
const b64 = (s) => Uint8Array.from(Buffer.from(s, "base64"));
const key = await crypto.subtle.importKey("spki", b64(signed.publicKey),
  { name: "ECDSA", namedCurve: "P-384" }, true, ["verify"]);
const ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key,
  b64(signed.signature), new TextEncoder().encode(signed.hash));
console.log(ok ? "valid" : "invalid");
"""
    )
    good = subprocess.run(
        [node, str(script), json.dumps(signed)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert good.stdout.strip() == "valid", good.stderr
    forged = {**signed, "hash": "sha256:" + "0" * 64}
    bad = subprocess.run(
        [node, str(script), json.dumps(forged)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.stdout.strip() == "invalid", bad.stderr


def test_verify_passes_with_both_verifiers_and_pins_the_key(
    exported: dict[str, Any], cli: Cli, public_key: Path
) -> None:
    wacz = str(exported["wacz"])
    fingerprint = fingerprint_of_key_file(str(public_key))
    proc = cli.run("verify", wacz, "--trusted-key", str(public_key))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "VERIFIED" in proc.stdout
    alone = _standalone(wacz, "--trust", fingerprint, "--json")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    report = json.loads(alone.stdout)
    assert report["kind"] == "wacz" and [c["step"] for c in report["checks"]] == [20, 21, 22]
    assert all(c["ok"] and not c.get("skipped") for c in report["checks"])
    other = _standalone(wacz, "--trust", "ab" * 32)
    assert other.returncode == 1 and "not a trusted key" in other.stdout


@pytest.mark.parametrize(
    "which", ["warc", "index", "pages", "manifest", "sig", "datapackage", "digest"]
)
def test_one_flipped_byte_in_any_member_fails_naming_it(
    exported: dict[str, Any], tmp_path: Path, which: str
) -> None:
    members = _members(exported["wacz"])
    item = exported["captures"][0]["item_id"]
    name = {
        "warc": f"archive/{item}.warc.gz",
        "index": "indexes/index.cdx",
        "pages": "pages/pages.jsonl",
        "manifest": f"osint-capture/{item}.manifest.json",
        "sig": f"osint-capture/{item}.manifest.json.sig",
        "datapackage": "datapackage.json",
        "digest": "datapackage-digest.json",
    }[which]
    # In place, as damage would be: the zip's CRC-32 gives it away, naming the member.
    data = bytearray(exported["wacz"].read_bytes())
    with zipfile.ZipFile(exported["wacz"]) as package:
        info = package.getinfo(name)
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    data[info.header_offset + 30 + name_len + extra_len + info.file_size // 2] ^= 1
    damaged = tmp_path / "damaged.wacz"
    damaged.write_bytes(bytes(data))
    proc = subprocess.run(
        [*_STANDALONE, str(damaged)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1 and name in proc.stderr, proc.stdout + proc.stderr
    # Rewritten with a CRC to match, as a forger would: the signed hashes give it away.
    changed = bytearray(members[name])
    changed[len(changed) // 2] ^= 1
    forged = _write(tmp_path / "forged.wacz", {**members, name: bytes(changed)})
    report = examine_path(forged).verdict
    assert not report.ok
    failed = [c for c in report.checks if not c.ok]
    assert any(name in c.detail for c in failed), [c.detail for c in failed]


def test_a_signature_by_another_key_fails(exported: dict[str, Any], tmp_path: Path) -> None:
    members = _members(exported["wacz"])
    digest = json.loads(members["datapackage-digest.json"])
    signed = digest["signedData"]
    other = ec.generate_private_key(ec.SECP384R1())
    forged_sig = base64.b64encode(
        raw_signature(other.sign(signed["hash"].encode(), ec.ECDSA(hashes.SHA256())))
    ).decode()
    other_key = base64.b64encode(
        other.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    for replaced, expect in (
        ({"signature": forged_sig}, "does not verify"),
        ({"signature": forged_sig, "publicKey": other_key}, "the signature was replaced"),
    ):
        swapped = {**digest, "signedData": {**signed, **replaced}}
        forged = _write(
            tmp_path / "swapped.wacz",
            {**members, "datapackage-digest.json": json.dumps(swapped).encode()},
        )
        proc = subprocess.run(
            [*_STANDALONE, str(forged)], capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 1, proc.stdout
        assert "21. datapackage-digest.json" in proc.stdout and expect in proc.stdout, proc.stdout


def test_replaywebpage_replays_the_wacz_offline(exported: dict[str, Any], cli: Cli) -> None:
    store = EvidenceStore(cli.home)
    post = next(c for c in exported["captures"] if c["final_url"].endswith("/post/1"))
    with (
        open_source(store, str(exported["wacz"])) as source,
        ReplayServer(source, replay_assets()) as server,
    ):
        seen = read_replay(f"{server.url}?url={post['final_url']}", post["final_url"])
        here = urlsplit(server.url).netloc
    assert seen.frame_url.endswith("mp_/" + post["final_url"])
    assert POST_HEADLINE in seen.text and POST_AUTHOR in seen.text
    assert len(seen.comments) == _TOTAL
    for n in range(1, _TOTAL + 1):
        assert any(f"Comment {n}:" in c for c in seen.comments), n
    # Every request went to the replay server itself: none to the live sample site (also
    # on 127.0.0.1), none anywhere else.
    others = {u for u in seen.requests if urlsplit(u).netloc != here}
    assert not others, sorted(others)
    assert seen.hosts() == {"127.0.0.1"}


def test_the_replay_server_answers_byte_ranges(exported: dict[str, Any], cli: Cli) -> None:
    data = exported["wacz"].read_bytes()
    with (
        open_source(EvidenceStore(cli.home), str(exported["wacz"])) as source,
        ReplayServer(source, replay_assets()) as server,
    ):
        url = f"{server.url}archive/{source.name}"
        request = urllib.request.Request(url, headers={"Range": "bytes=100-299"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 206
            assert answer.headers["Content-Range"] == f"bytes 100-299/{len(data)}"
            assert answer.read() == data[100:300]
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{server.url}nothing-here", timeout=10)
        assert missing.value.code == 404


@pytest.mark.parametrize("kind", ["item", "item folder", "wacz", "bundle"])
def test_replay_command_serves_an_item(exported: dict[str, Any], cli: Cli, kind: str) -> None:
    post = next(c for c in exported["captures"] if c["final_url"].endswith("/post/1"))
    target = {
        "item": post["item_id"],
        "item folder": post["item_dir"],
        "wacz": str(exported["wacz"]),
        "bundle": str(exported["bundle"]),
    }[kind]
    argv = [sys.executable, "-m", "osint_capture", "--home", str(cli.home), "replay", target]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli.env
    )
    try:
        assert proc.stdout is not None
        address, told = "", []
        for line in proc.stdout:
            told.append(line)
            if line.startswith("Open "):
                address = line.split()[1]
                break
        assert address.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        seen = read_replay(address, post["final_url"])
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert any(line.startswith("Replaying ") for line in told), told
    assert any(post["final_url"] in line for line in told if "page:" in line), told
    assert POST_HEADLINE in seen.text and POST_AUTHOR in seen.text
    assert len(seen.comments) == _TOTAL
    here = urlsplit(address).netloc
    assert {urlsplit(u).netloc for u in seen.requests} == {here}


def test_export_refuses_a_wacz_out_that_is_not_one(
    exported: dict[str, Any], cli: Cli, tmp_path: Path
) -> None:
    proc = cli.run(
        "export",
        exported["case_id"],
        "--format",
        "wacz",
        "--out",
        str(tmp_path / "x.zip"),
        "--recipient",
        "R",
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--out must name a .wacz file" in proc.stderr
    assert not (tmp_path / "x.zip").exists()
