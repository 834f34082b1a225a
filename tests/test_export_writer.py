"""The bundle writer on its own (no browser): items sealed with the real sealing code in
a real case, exported with :func:`cases.export.export_case` and a renderer given here.

What it shows: an export whose report fails leaves no file at ``--out`` (nor a temporary
one) and says so in the log, whose chain still verifies; a renderer cannot slip a file
the bundle format does not know into the bundle; the bundle's custody log stops at the
export's own entry even when the home's log has moved on.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from cases.actions import note_item, open_case, publish_capture
from cases.export import ExportView, export_case
from cases.store import EvidenceStore
from chain_of_custody.errors import UsageError
from chain_of_custody.item import seal_item
from chain_of_custody.report import examine_path
from chain_of_custody.signing import Signer, generate_private_key
from chain_of_custody.verify import verify_case

CASE = "2026-0177"
URL = "https://social.example/post/7"
FIELDS = {
    "title": "Threats posted against a witness",
    "category": "online-crime",
    "investigator": "Det. R. Example",
    "authority": "Lt. S. Example, approval 26-200",
}


@pytest.fixture
def home(tmp_path: Path) -> tuple[EvidenceStore, Signer, str]:
    signer = Signer(operator="Det. R. Example", private_key=generate_private_key())
    store = EvidenceStore(tmp_path / "evidence")
    open_case(store, CASE, signer=signer, **FIELDS)
    staging = store.new_item(CASE)
    (staging.path / "text.txt").write_text("مفقود منذ يوم الجمعة 🙏\n", encoding="utf-8")
    (staging.path / "dom.html").write_text("<html><body>post</body></html>\n", encoding="utf-8")
    sealed = seal_item(
        staging.path,
        item_id=staging.item_id,
        case_id=CASE,
        status="complete",
        provenance={"requested_url": URL, "final_url": URL},
        signer=signer,
    )
    publish_capture(
        store,
        CASE,
        staging,
        manifest_sha256=sealed.manifest_sha256,
        requested_url=URL,
        final_url=URL,
        status="complete",
        files=2,
        signer=signer,
    )
    return store, signer, staging.item_id


def _actions(store: EvidenceStore) -> list[str]:
    log = store.case_dir(CASE) / "custody.jsonl"
    return [json.loads(line)["action"] for line in log.read_text().splitlines()]


def test_a_failed_report_leaves_nothing_at_out_and_is_logged(
    home: tuple[EvidenceStore, Signer, str], tmp_path: Path
) -> None:
    store, signer, _ = home
    out = tmp_path / "out" / "bundle.zip"
    out.parent.mkdir()

    def broken(view: ExportView) -> Mapping[str, bytes]:
        raise RuntimeError("the printer caught fire")

    with pytest.raises(RuntimeError):
        export_case(store, CASE, out=out, recipient="ADA X", signer=signer, render=broken)
    assert list(out.parent.iterdir()) == []
    assert _actions(store)[-2:] == ["exported", "note"]
    note = json.loads((store.case_dir(CASE) / "custody.jsonl").read_text().splitlines()[-1])
    assert "did not complete" in note["details"]["text"]
    assert "the printer caught fire" in note["details"]["text"]
    assert verify_case(store.case_dir(CASE)).ok


def test_a_renderer_cannot_add_unknown_files(
    home: tuple[EvidenceStore, Signer, str], tmp_path: Path
) -> None:
    store, signer, _ = home
    out = tmp_path / "bundle.zip"
    with pytest.raises(ValueError, match=r"extra\.exe"):
        export_case(
            store,
            CASE,
            out=out,
            recipient="ADA X",
            signer=signer,
            render=lambda view: {"extra.exe": b"MZ"},
        )
    assert not out.exists()


def test_the_bundle_log_stops_at_the_export_and_verifies(
    home: tuple[EvidenceStore, Signer, str], tmp_path: Path
) -> None:
    store, signer, item_id = home
    out = tmp_path / "bundle.zip"

    def report_then_note(view: ExportView) -> Mapping[str, bytes]:
        # Someone else logs a note while the bundle is being made.
        note_item(store, item_id, text="copied to disc 2", signer=signer)
        return {"report.html": f"<p>{view.recipient}</p>".encode()}

    result = export_case(
        store,
        CASE,
        out=out,
        recipient="ADA X",
        reason=None,
        signer=signer,
        render=report_then_note,
    )
    assert _actions(store)[-2:] == ["exported", "note"]
    with zipfile.ZipFile(out) as archive:
        lines = archive.read("custody.jsonl").decode().splitlines()
        manifest = json.loads(archive.read("bundle-manifest.json"))
    assert json.loads(lines[-1])["action"] == "exported"
    assert manifest["custody_head"]["seq"] == len(lines) == result.head_seq
    assert manifest["reason"] is None
    assert examine_path(out).verdict.ok
    with pytest.raises(UsageError, match="already exists"):
        export_case(store, CASE, out=out, recipient="ADA X", signer=signer)
