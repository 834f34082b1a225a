"""A local RFC 3161 Time-Stamping Authority on 127.0.0.1, answering with `openssl ts -reply`.

Throwaway certificates (:func:`make_pki`): a root made with ``openssl req -x509``, a TSA
certificate it signs with ``extendedKeyUsage = critical,timeStamping``, and a second,
"rogue" root with its own TSA certificate for refusal tests. The server's path picks
how it answers (:data:`MODES`); a URL for a TSA that is down is a port nobody listens on.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["MODES", "Pki", "down_url", "make_pki", "running_tsa"]

# good: the reply carries the TSA certificate and its root (openssl writes them in chain
# order, which strict DER readers refuse unless re-sorted); leaf: only the TSA's own
# certificate; other-imprint: a valid stamp of other data; broken-signature: a good reply
# with its signature's last byte flipped; untrusted: signed by the rogue TSA;
# not-granted: status rejection; not-a-stamp: an HTML page.
MODES = (
    "good",
    "leaf",
    "other-imprint",
    "broken-signature",
    "untrusted",
    "not-granted",
    "not-a-stamp",
)
_TSA_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,nonRepudiation
extendedKeyUsage=critical,timeStamping
"""
_ROOT_EXT = (
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
)
# A TimeStampResp whose PKIStatusInfo is rejection (2), and nothing else.
_REJECTION = bytes.fromhex("3005300302 0102".replace(" ", ""))


@dataclass(frozen=True)
class Pki:
    folder: Path
    root: Path
    tsa_cert: Path
    rogue_root: Path

    def config(self, name: str) -> Path:
        return self.folder / f"{name}.cnf"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _tsa(folder: Path, name: str, root: str) -> None:
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN=Test TSA {name}",
        cwd=folder,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{root}.pem",
        "-CAkey",
        f"{root}.key",
        "-CAcreateserial",
        "-out",
        f"{name}.pem",
        "-days",
        "3650",
        "-extfile",
        "tsa.ext",
        cwd=folder,
    )


def _config(folder: Path, name: str, cert: str, *, chain: str | None) -> None:
    (folder / f"{name}.serial").write_text("01\n")
    certs = f"certs = ./{chain}\n" if chain else ""
    (folder / f"{name}.cnf").write_text(
        "[ tsa ]\ndefault_tsa = conf\n[ conf ]\n"
        f"serial = ./{name}.serial\nsigner_cert = ./{cert}.pem\nsigner_key = ./{cert}.key\n"
        f"{certs}signer_digest = sha256\ndefault_policy = 1.2.3.4.1\n"
        "digests = sha256, sha384, sha512\ness_cert_id_alg = sha256\naccuracy = secs:1\n"
        "ordering = no\ntsa_name = yes\n"
    )


def make_pki(folder: Path) -> Pki:
    """Roots, TSA certificates and one openssl config per way of answering."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tsa.ext").write_text(_TSA_EXT)
    for root, cn in (("root", "Test TSA Root"), ("rogue", "Rogue TSA Root")):
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            f"{root}.key",
            "-out",
            f"{root}.pem",
            "-days",
            "3650",
            "-subj",
            f"/CN={cn}",
            *_ROOT_EXT,
            cwd=folder,
        )
    _tsa(folder, "tsa", "root")
    _tsa(folder, "rogue-tsa", "rogue")
    (folder / "chain.pem").write_bytes(
        (folder / "tsa.pem").read_bytes() + (folder / "root.pem").read_bytes()
    )
    _config(folder, "good", "tsa", chain="chain.pem")
    _config(folder, "leaf", "tsa", chain=None)
    _config(folder, "rogue", "rogue-tsa", chain=None)
    return Pki(folder, folder / "root.pem", folder / "tsa.pem", folder / "rogue.pem")


def reply(pki: Pki, query: bytes, mode: str) -> bytes:
    """The DER reply the TSA in ``mode`` gives to ``query``."""
    if mode == "not-granted":
        return _REJECTION
    with tempfile.TemporaryDirectory(dir=pki.folder) as work:
        q, r = Path(work) / "q.tsq", Path(work) / "r.tsr"
        if mode == "other-imprint":
            other = Path(work) / "other"
            other.write_bytes(b"something else entirely\n")
            _openssl(
                "ts",
                "-query",
                "-data",
                str(other),
                "-sha256",
                "-cert",
                "-out",
                str(q),
                cwd=pki.folder,
            )
        else:
            q.write_bytes(query)
        conf = {"untrusted": "rogue", "leaf": "leaf"}.get(mode, "good")
        _openssl(
            "ts",
            "-reply",
            "-config",
            f"{conf}.cnf",
            "-queryfile",
            str(q),
            "-out",
            str(r),
            cwd=pki.folder,
        )
        der = r.read_bytes()
    if mode == "broken-signature":
        der = der[:-1] + bytes([der[-1] ^ 0x01])
    return der


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", "0"))
        query = self.rfile.read(size)
        mode = self.path.strip("/")
        self.server.requests.append(mode)
        if mode == "not-a-stamp":
            body, kind = b"<html>maintenance</html>", "text/html"
        elif mode not in MODES:
            self.send_error(404)
            return
        else:
            with self.server.lock:  # openssl's serial file: one reply at a time
                body, kind = reply(self.server.pki, query, mode), "application/timestamp-reply"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, pki: Pki) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pki = pki
        self.lock = threading.Lock()
        self.requests: list[str] = []

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{mode}"


@contextmanager
def running_tsa(pki: Pki) -> Iterator[_Server]:
    server = _Server(pki)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def down_url() -> str:
    """A TSA URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"
