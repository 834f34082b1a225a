"""``osint-capture demo``: the whole path on a bundled sample site, nothing to set up.

It starts the sample post site on 127.0.0.1, opens a demo case, captures the
sample post, verifies the item, then exports the case as a bundle (beside the demo
home, in ``<home>-exports/``), verifies the bundle as an examiner would and prints its
path last. The demo uses its own throwaway signing key
(operator "Demo Operator") so an operator's real key is never touched, and its
own evidence home (``./demo-evidence`` unless ``--home`` is given) so demo items
never mix with real evidence.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from rich.console import Console

from cases import actions
from cases.export import export_case
from cases.store import EvidenceStore
from chain_of_custody.errors import IntegrityError
from chain_of_custody.report import examine_path
from chain_of_custody.signing import Signer
from chain_of_custody.timeutil import utc_now
from osint_capture import keys
from osint_capture.capture import capture_post
from osint_capture.demo.sample_site import SampleSite
from osint_capture.engine.browser import BrowserChoice, find_browser
from osint_capture.engine.model import CaptureOptions
from osint_capture.report import build_renderer

__all__ = ["DEMO_PASSPHRASE", "run_demo"]

DEMO_PASSPHRASE = "demo passphrase, not for evidence"


def run_demo(home: Path | None, out: Console) -> None:
    store = EvidenceStore(Path(os.path.abspath(home or Path.cwd() / "demo-evidence")))
    key_dir = Path(tempfile.mkdtemp(prefix="osint-capture-demo-key-"))
    with keys.using_key_dir(key_dir):
        keys.init_key("Demo Operator", DEMO_PASSPHRASE, evidence_home=store.home)
        signer = keys.load_signer(DEMO_PASSPHRASE, evidence_home=store.home)
    case_id = "DEMO-" + utc_now()[:19].replace("-", "").replace(":", "")
    actions.open_case(
        store,
        case_id,
        title="Demo: missing teenager post on the bundled sample site",
        category="missing-person",
        investigator="Demo Investigator",
        authority="Demo only - no real investigation",
        signer=signer,
    )
    out.print(f"Opened demo case {case_id} in {store.case_dir(case_id)}")
    browser = find_browser(None)
    with SampleSite() as site:
        url = site.url("/post/1")
        out.print(f"Sample post site on {site.base_url}; capturing {url} …")
        report = capture_post(
            store,
            case_id,
            url,
            CaptureOptions(allow_private_network=True),
            signer=signer,
            browser=browser,
        )
    out.print(f"Captured item {report.item_id} [{report.status}]: {report.title}")
    out.print(f"  item folder: {report.item_dir}")
    for path in sorted(report.item_dir.iterdir()):
        out.print(f"    {path.name:<20} {path.stat().st_size:>12,} bytes")
    result = actions.verify_and_log(store, report.item_id, trusted=None, signer=signer).report
    for step in result.steps:
        mark = "ok  " if step.ok else "FAIL"
        out.print(f"  verify {step.number}. {mark} {step.name}: {step.detail}")
    if not result.ok:
        shutil.rmtree(key_dir, ignore_errors=True)
        raise IntegrityError(f"the demo item {report.item_dir} failed verification")
    out.print("Verified: the item is exactly what was captured.")
    out.print(
        "Check it without this tool:  cd ITEM && sha256sum -c SHA256SUMS && "
        "warcio check archive.warc.gz"
    )
    out.print(
        "(--allow-private-network was used because the sample site runs on 127.0.0.1; "
        "the manifest records it.)"
    )
    try:
        bundle = _export_and_verify(store, case_id, signer, browser, out)
    finally:
        shutil.rmtree(key_dir, ignore_errors=True)
    out.print(f"Bundle: {bundle}")


def _export_and_verify(
    store: EvidenceStore, case_id: str, signer: Signer, browser: BrowserChoice, out: Console
) -> Path:
    """Export the demo case beside the demo home and verify the bundle read-only."""
    exports = Path(f"{store.home}-exports")  # never inside the home: export refuses that
    exports.mkdir(exist_ok=True)
    with build_renderer(browser) as render:
        result = export_case(
            store,
            case_id,
            out=exports / f"{case_id}.zip",
            recipient="Demo Prosecutor",
            reason="demo only - no real investigation",
            signer=signer,
            render=render,
        )
    out.print(
        f"Exported case {case_id} to {result.recipient}: {result.members} files, "
        f"{result.size:,} bytes; custody entry {result.head_seq} records the release."
    )
    verdict = examine_path(result.path).verdict
    for check in verdict.checks:
        if check.step >= 8:  # the bundle's own and the case's; the item's are above
            mark = "ok  " if check.ok else "FAIL"
            out.print(f"  verify bundle {check.step}. {mark} {check.check}")
    if not verdict.ok:
        raise IntegrityError(f"the demo bundle {result.path} failed verification")
    out.print(
        "Verified: the bundle is exactly what was exported. Check it without this tool: "
        "unzip it, then follow VERIFY.txt (sha256sum -c SHA256SUMS, openssl dgst …)."
    )
    return result.path
