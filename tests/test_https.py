"""HTTPS captures: the certificate chain and protocol are recorded; an untrusted
certificate is never captured through.

A throwaway CA signs a leaf for localhost/127.0.0.1; the browser trusts it only
through an NSS database in a temporary HOME (as an agency trusts its own CA),
never by switching certificate checks off.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from osint_capture.demo.sample_site import SampleSite
from tests.conftest import Cli
from tests.warc_reading import read_warc, responses

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which("certutil") is None, reason="needs certutil (libnss3-tools)"),
]


def _cert(
    subject: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SampleSite, Path]]:
    d = tmp_path_factory.mktemp("tls")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("osint-capture test CA", ca_key, ca_key, None, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("localhost", ca_key, leaf_key, ca.subject, ca=False)
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "leaf.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    )
    (d / "leaf.key").write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    trusting_home = d / "home"
    nssdb = trusting_home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(
        [
            "certutil",
            "-d",
            f"sql:{nssdb}",
            "-A",
            "-t",
            "C,,",
            "-n",
            "testca",
            "-i",
            str(d / "ca.pem"),
        ],
        check=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "leaf.pem", d / "leaf.key")
    with SampleSite(tls=ctx) as site:
        yield site, trusting_home


def test_https_capture_records_certificate_chain_and_protocol(
    cli: Cli, tls_site: tuple[SampleSite, Path]
) -> None:
    site, home = tls_site
    case_id = cli.new_case()
    url = site.url("/post/1")
    assert url.startswith("https://")
    proc = cli.run(
        "capture",
        url,
        "--case",
        case_id,
        "--allow-private-network",
        "--json",
        env={"HOME": str(home)},
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    prov = json.loads(Path(data["manifest"]).read_bytes())["provenance"]
    tls = prov["tls"]
    assert tls["protocol"] == "TLS 1.3"
    assert len(tls["chain_pem"]) == 2
    chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in tls["chain_pem"]]
    assert chain[0].subject.rfc4514_string() == "CN=localhost"
    assert chain[1].subject.rfc4514_string() == "CN=osint-capture test CA"
    pem_file = Path(data["item_dir"]) / "tls-chain.pem"
    assert pem_file.read_text() == "".join(tls["chain_pem"])
    (page,) = responses(read_warc(Path(data["warc"])), url)
    assert "tls/1.3" in page.headers["WARC-Protocol"]
    assert page.headers["WARC-IP-Address"] == "127.0.0.1"


def test_untrusted_certificate_is_never_captured(
    cli: Cli, tls_site: tuple[SampleSite, Path], tmp_path: Path
) -> None:
    site, _ = tls_site
    case_id = cli.new_case()
    proc = cli.run(
        "capture",
        site.url("/post/1"),
        "--case",
        case_id,
        "--allow-private-network",
        env={"HOME": str(tmp_path)},
    )
    assert proc.returncode == 4
    assert "CERT" in proc.stderr.upper()
    items = cli.home / case_id / "items"
    assert not items.exists() or not any(p for p in items.iterdir() if not p.name.startswith("."))
