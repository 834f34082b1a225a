"""The operator key store: created private, never overwritten, loud when missing or locked."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from chain_of_custody.canonical import canonical_json
from chain_of_custody.errors import SigningKeyError, UsageError
from chain_of_custody.signing import (
    ALGORITHM,
    Signer,
    fingerprint_of,
    generate_private_key,
    public_key_pem_of,
    verify_signature,
)
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


def _record(key_home: Path) -> dict[str, object]:
    record: dict[str, object] = json.loads((key_home / "key.json").read_bytes())
    return record


def _write_record(key_home: Path, record: dict[str, object]) -> None:
    # In place, as an editor would: the file keeps its owner and mode.
    (key_home / "key.json").write_bytes(canonical_json(record) + b"\n")


def _signature_verifies(record: dict[str, object]) -> bool:
    unsigned = {name: value for name, value in record.items() if name != "signature"}
    return verify_signature(
        str(record["public_key"]),
        canonical_json(unsigned),
        base64.b64decode(str(record["signature"])),
    )


def _every_use_refuses(match: str, tmp_path: Path) -> list[SigningKeyError]:
    """keys show, load_signer, signer_for and export all refuse with ``match``."""
    caught = []
    for use in (
        keys.key_info,
        lambda: keys.load_signer(PASSPHRASE, evidence_home=EVIDENCE),
        lambda: keys.signer_for(EVIDENCE, lambda _: PASSPHRASE),
        lambda: keys.export_public_key(tmp_path / "exported.pub.pem"),
    ):
        with pytest.raises(SigningKeyError, match=match) as error:
            use()
        caught.append(error.value)
    assert not (tmp_path / "exported.pub.pem").exists()
    return caught


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


def test_secrets_are_taken_out_of_the_environment_and_still_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "_taken", {})
    monkeypatch.setenv("OSINT_CAPTURE_KEY_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("OSINT_CAPTURE_PASSPHRASE", PASSPHRASE)
    keys.take_secrets_from_environment()
    assert "OSINT_CAPTURE_KEY_DIR" not in os.environ
    assert "OSINT_CAPTURE_PASSPHRASE" not in os.environ
    assert keys.key_dir() == tmp_path / "keys"
    assert keys.passphrase_from_env() == PASSPHRASE
    info = keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    assert keys.signer_for(EVIDENCE, lambda _: "never asked").fingerprint == info.fingerprint
    with keys.using_key_dir(tmp_path / "demo-keys"):
        assert keys.key_dir() == tmp_path / "demo-keys"
    assert keys.key_dir() == tmp_path / "keys"


# -- permissions, as ssh checks them -----------------------------------------------------


def test_a_world_writable_key_folder_is_refused_with_the_chmod_hint(
    key_home: Path, tmp_path: Path
) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    key_home.chmod(0o777)
    for error in _every_use_refuses("writable by its group and others", tmp_path):
        assert str(key_home) in error.message and "0777" in error.message
        assert error.hint == f"run `chmod go-w {key_home}`"
        assert "\n" not in error.one_line()
    key_home.chmod(0o755)  # readable by others is fine for the folder, as for ~/.ssh
    assert keys.load_signer(PASSPHRASE, evidence_home=EVIDENCE).operator == "DC Jane Doe"


def test_init_refuses_an_existing_key_folder_others_can_write(key_home: Path) -> None:
    key_home.mkdir()
    key_home.chmod(0o770)
    with pytest.raises(SigningKeyError, match="writable by its group") as caught:
        keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    assert caught.value.hint == f"run `chmod go-w {key_home}`"
    assert list(key_home.iterdir()) == []


def test_a_group_writable_key_file_is_refused(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    key_file = key_home / "signing-key.pem"
    key_file.chmod(0o620)
    for error in _every_use_refuses("writable by its group", tmp_path):
        assert str(key_file) in error.message
        assert error.hint == f"run `chmod 600 {key_file}`"


def test_a_group_writable_key_json_is_refused(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    info_file = key_home / "key.json"
    info_file.chmod(0o664)
    for error in _every_use_refuses("writable by its group", tmp_path):
        assert str(info_file) in error.message and "operator name" in error.message
        assert error.hint == f"run `chmod go-w {info_file}`"


def test_a_key_file_readable_by_others_is_refused(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    key_file = key_home / "signing-key.pem"
    key_file.chmod(0o604)
    for error in _every_use_refuses("readable by others", tmp_path):
        assert "accessible to you alone" in error.message
        assert error.hint == f"run `chmod 600 {key_file}`"
    key_file.chmod(0o640)  # the group is somebody else too
    _every_use_refuses("readable by its group", tmp_path)
    key_file.chmod(0o600)
    assert keys.key_info().operator == "DC Jane Doe"


def test_a_symlinked_key_file_is_refused(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    key_file = key_home / "signing-key.pem"
    elsewhere = tmp_path / "elsewhere.pem"  # private and intact: only the link is wrong
    key_file.rename(elsewhere)
    key_file.symlink_to(elsewhere)
    for error in _every_use_refuses("is a symbolic link", tmp_path):
        assert str(key_file) in error.message
        assert str(elsewhere) in (error.hint or "")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root"
)
def test_key_files_of_another_user_are_refused(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    stranger = 54321
    for path in (key_home, key_home / "signing-key.pem", key_home / "key.json"):
        os.chown(path, stranger, -1)
        for error in _every_use_refuses(f"belongs to user id {stranger}", tmp_path):
            assert str(path) in error.message
            assert error.hint == f"if it really is yours, run `sudo chown 0 {path}`"
        os.chown(path, 0, -1)
    assert keys.key_info().operator == "DC Jane Doe"


# -- the operator name is bound to the key ------------------------------------------------


def test_key_json_is_signed_by_its_own_key(key_home: Path) -> None:
    info = keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    record = _record(key_home)
    assert sorted(record) == [
        "algorithm",
        "created",
        "fingerprint",
        "operator",
        "public_key",
        "signature",
    ]
    assert _signature_verifies(record)
    assert info.bound and keys.key_info().bound


def test_an_edited_operator_name_is_refused(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    record = _record(key_home)
    record["operator"] = "DS John Smith"
    _write_record(key_home, record)
    for error in _every_use_refuses("was changed", tmp_path):
        assert str(key_home / "key.json") in error.message
        assert "operator name ('DS John Smith')" in error.message
        assert "not the one signed with the key" in error.message


def test_a_forged_key_json_signature_is_refused(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    record = _record(key_home)
    record["operator"] = "DS John Smith"
    # Signed, but by a key other than the one key.json names.
    forger = Signer(operator="DS John Smith", private_key=generate_private_key())
    unsigned = {name: value for name, value in record.items() if name != "signature"}
    record["signature"] = base64.b64encode(forger.sign(canonical_json(unsigned))).decode()
    _write_record(key_home, record)
    _every_use_refuses("was changed", tmp_path)
    record["signature"] = "not base64!"
    _write_record(key_home, record)
    _every_use_refuses("signature is not base64", tmp_path)
    record["signature"] = ""  # an empty signature is not "no signature"
    _write_record(key_home, record)
    _every_use_refuses("was changed", tmp_path)


def test_a_swapped_public_key_in_key_json_is_refused(key_home: Path, tmp_path: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    original = _record(key_home)
    other = generate_private_key().public_key()
    swapped = {**original, "public_key": public_key_pem_of(other)}
    _write_record(key_home, swapped)
    _every_use_refuses("inconsistent: its fingerprint is not its key's", tmp_path)
    swapped["fingerprint"] = fingerprint_of(other)
    _write_record(key_home, swapped)
    _every_use_refuses("was changed", tmp_path)


def test_a_key_json_from_before_signing_is_bound_on_first_use(
    key_home: Path, tmp_path: Path
) -> None:
    info = keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    legacy = _record(key_home)
    del legacy["signature"]
    _write_record(key_home, legacy)
    # Still shown and exported without the passphrase, but marked unbound.
    shown = keys.key_info()
    assert (shown.operator, shown.fingerprint, shown.bound) == (
        "DC Jane Doe",
        info.fingerprint,
        False,
    )
    assert keys.export_public_key(tmp_path / "pub.pem").read_text() == info.public_key_pem
    # The first use with the passphrase signs it.
    signer = keys.load_signer(PASSPHRASE, evidence_home=EVIDENCE)
    assert signer.operator == "DC Jane Doe"
    bound = _record(key_home)
    assert {name: value for name, value in bound.items() if name != "signature"} == legacy
    assert _signature_verifies(bound)
    assert _mode(key_home / "key.json") == 0o644
    assert sorted(p.name for p in key_home.iterdir()) == ["key.json", "signing-key.pem"]
    assert keys.key_info() == dataclasses.replace(shown, bound=True)
    # From now on an edit shows.
    bound["operator"] = "DS John Smith"
    _write_record(key_home, bound)
    _every_use_refuses("operator name .* not the one signed with the key", tmp_path)


def test_a_legacy_key_json_with_a_wrong_passphrase_is_left_unbound(key_home: Path) -> None:
    keys.init_key("DC Jane Doe", PASSPHRASE, evidence_home=EVIDENCE)
    legacy = _record(key_home)
    del legacy["signature"]
    _write_record(key_home, legacy)
    with pytest.raises(SigningKeyError, match="wrong passphrase"):
        keys.load_signer("not the passphrase", evidence_home=EVIDENCE)
    assert _record(key_home) == legacy
