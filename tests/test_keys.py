"""The operator key store: created private, never overwritten, loud when missing or locked."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from chain_of_custody.errors import SigningKeyError, UsageError
from chain_of_custody.signing import ALGORITHM, verify_signature
from osint_capture import keys

PASSPHRASE = "correct horse battery staple"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
# Never created: the key folders of these tests are all outside it.
EVIDENCE = Path("/nonexistent/osint-capture-test-evidence")


@pytest.fixture
def key_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "keys"
    monkeypatch.setenv("OSINT_CAPTURE_KEY_DIR", str(home))
    monkeypatch.delenv("OSINT_CAPTURE_PASSPHRASE", raising=False)
    return home


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_dir_follows_the_environment(key_home: Path) -> None:
    assert keys.key_dir() == key_home


def test_key_dir_defaults_to_the_user_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OSINT_CAPTURE_KEY_DIR", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert keys.key_dir() == tmp_path / "config" / "osint-capture" / "keys"


def test_init_creates_a_private_encrypted_key(key_home: Path) -> None:
    info = keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    key_file = key_home / "signing-key.pem"
    assert info.path == key_file
    assert _mode(key_file) == 0o600
    assert _mode(key_home) == 0o700
    assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    recorded = json.loads((key_home / "key.json").read_text())
    assert recorded["operator"] == "DC Jane Doe"
    assert recorded["fingerprint"] == info.fingerprint
    assert recorded["algorithm"] == ALGORITHM
    assert recorded["created"] == info.created
    # No temporary files are left next to the key.
    assert sorted(p.name for p in key_home.iterdir()) == ["key.json", "signing-key.pem"]


def test_key_info_reads_back_without_the_passphrase(key_home: Path) -> None:
    created = keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    assert keys.key_info() == created


def test_load_signer_signs_with_the_stored_key(key_home: Path) -> None:
    info = keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    signer = keys.load_signer(PASSPHRASE, evidence_home=EVIDENCE)
    assert signer.operator == "DC Jane Doe"
    assert signer.fingerprint == info.fingerprint
    assert verify_signature(info.public_key_pem, b"evidence", signer.sign(b"evidence"))


def test_refuses_to_overwrite_an_existing_key(key_home: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    before = (key_home / "signing-key.pem").read_bytes()
    with pytest.raises(UsageError) as caught:
        keys.init_key("Someone Else", "another passphrase", evidence_home=EVIDENCE)
    assert str(key_home / "signing-key.pem") in caught.value.message
    assert (key_home / "signing-key.pem").read_bytes() == before
    assert keys.key_info().operator == "DC Jane Doe"


def test_refuses_an_empty_passphrase(key_home: Path) -> None:
    with pytest.raises(SigningKeyError, match="empty"):
        keys.init_key("DC Jane Doe", "", evidence_home=EVIDENCE)
    assert not (key_home / "signing-key.pem").exists()


def test_refuses_an_empty_operator(key_home: Path) -> None:
    with pytest.raises(UsageError, match="operator"):
        keys.init_key("   ", PASSPHRASE, evidence_home=EVIDENCE)


def test_wrong_passphrase_is_a_signing_key_error(key_home: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        keys.load_signer("not the passphrase", evidence_home=EVIDENCE)


def test_missing_key_says_how_to_create_one(key_home: Path) -> None:
    with pytest.raises(SigningKeyError) as caught:
        keys.key_info()
    assert "keys init" in caught.value.one_line()
    with pytest.raises(SigningKeyError) as caught_load:
        keys.load_signer(PASSPHRASE, evidence_home=EVIDENCE)
    assert "keys init" in caught_load.value.one_line()


def test_passphrase_comes_from_the_environment(
    key_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    assert keys.passphrase_from_env() is None
    with pytest.raises(SigningKeyError) as caught:
        keys.load_signer(None, evidence_home=EVIDENCE)
    assert "OSINT_CAPTURE_PASSPHRASE" in caught.value.one_line()
    monkeypatch.setenv("OSINT_CAPTURE_PASSPHRASE", PASSPHRASE)
    assert keys.passphrase_from_env() == PASSPHRASE
    assert keys.load_signer(None, evidence_home=EVIDENCE).fingerprint == info.fingerprint


def test_key_json_that_does_not_match_the_key_is_refused(
    key_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    # A key.json from another key store, copied next to this private key.
    other_home = tmp_path / "other"
    monkeypatch.setenv("OSINT_CAPTURE_KEY_DIR", str(other_home))
    keys.init_key("Someone Else", PASSPHRASE, evidence_home=EVIDENCE)
    monkeypatch.setenv("OSINT_CAPTURE_KEY_DIR", str(key_home))
    shutil.copy(other_home / "key.json", key_home / "key.json")
    with pytest.raises(SigningKeyError, match="does not hold the key"):
        keys.load_signer(PASSPHRASE, evidence_home=EVIDENCE)


def test_missing_key_json_is_reported(key_home: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    (key_home / "key.json").unlink()
    with pytest.raises(SigningKeyError, match=r"key\.json"):
        keys.key_info()


def test_export_public_key_to_a_file_and_a_directory(key_home: Path, tmp_path: Path) -> None:
    info = keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    out_file = keys.export_public_key(tmp_path / "jane.pub.pem")
    assert out_file == tmp_path / "jane.pub.pem"
    assert out_file.read_text() == info.public_key_pem
    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    in_dir = keys.export_public_key(out_dir)
    assert in_dir.parent == out_dir and in_dir.read_text() == info.public_key_pem


@pytest.mark.skipif(not Path(OPENSSL).exists(), reason="openssl not installed")
def test_exported_public_key_verifies_with_openssl(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    signer = keys.load_signer(PASSPHRASE, evidence_home=EVIDENCE)
    data = tmp_path / "manifest.json"
    data.write_bytes(b'{"a":1}')
    (tmp_path / "manifest.json.sig").write_bytes(signer.sign(data.read_bytes()))
    pub = keys.export_public_key(tmp_path / "pub.pem")
    result = subprocess.run(
        [
            OPENSSL,
            "dgst",
            "-sha256",
            "-verify",
            str(pub),
            "-signature",
            str(tmp_path / "manifest.json.sig"),
            str(data),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "Verified OK"


def test_a_key_folder_inside_the_evidence_home_is_refused_on_every_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "evidence"
    inside = home / "keys"
    keys_link = tmp_path / "keys-link"  # looks outside, resolves inside
    monkeypatch.setenv("OSINT_CAPTURE_KEY_DIR", str(inside))
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=tmp_path / "elsewhere")
    keys_link.symlink_to(inside)
    monkeypatch.setenv("OSINT_CAPTURE_KEY_DIR", str(keys_link))
    with pytest.raises(SigningKeyError, match="inside the evidence home"):
        keys.load_signer(PASSPHRASE, evidence_home=home)
    with pytest.raises(SigningKeyError, match="inside the evidence home"):
        keys.signer_for(home, lambda info: PASSPHRASE)
    assert keys.signer_for(tmp_path / "elsewhere", lambda info: PASSPHRASE).operator
    monkeypatch.setenv("OSINT_CAPTURE_KEY_DIR", str(home / "new-keys"))
    with pytest.raises(SigningKeyError, match="inside the evidence home"):
        keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=home)
    assert not (home / "new-keys").exists()
