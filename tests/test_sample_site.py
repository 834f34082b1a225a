"""The bundled sample site, exercised over HTTP on 127.0.0.1 without a browser."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import http.client
import ipaddress
import json
import pathlib
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from osint_capture.demo.sample_site import (
    CHUNKED_SENTENCE,
    COMMENT_PAGES,
    COMMENTS_PER_PAGE,
    GZIP_SENTENCE,
    INDEX_LINKS,
    POST_ARABIC,
    POST_AUTHOR,
    POST_HEADLINE,
    POST_PUBLISHED,
    ROBOTS_TXT,
    SampleSite,
    expected_media_sha256,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


# ProxyHandler({}) so an http_proxy in the environment can never route these away
# from the loopback address.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())
_FOLLOWING_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class _Reply:
    def __init__(self, status: int, headers: Message, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def _get(site: SampleSite, path: str, *, method: str = "GET", follow: bool = False) -> _Reply:
    request = urllib.request.Request(site.url(path), method=method)
    opener = _FOLLOWING_OPENER if follow else _OPENER
    try:
        with opener.open(request, timeout=10) as response:
            return _Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        with error:
            return _Reply(error.code, error.headers, error.read())


@pytest.fixture(scope="module")
def site() -> Iterator[SampleSite]:
    with SampleSite() as running:
        yield running
    assert running.errors == []


def test_base_url_is_loopback(site: SampleSite) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", site.base_url)
    assert site.url("/post/1") == site.base_url + "/post/1"
    assert site.url("post/1") == site.base_url + "/post/1"


def test_index_links_every_endpoint(site: SampleSite) -> None:
    reply = _get(site, "/")
    assert reply.status == 200
    for path, _ in INDEX_LINKS:
        assert f'href="{path}"' in reply.text


def test_post_page_shell(site: SampleSite) -> None:
    reply = _get(site, "/post/1")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["X-Robots-Tag"] == "noarchive"
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    page = reply.text
    assert "<title>" in page
    assert '<meta name="robots" content="noarchive">' in page
    assert '<meta property="og:type" content="article">' in page
    assert f'<meta property="og:url" content="{site.base_url}/post/1">' in page
    assert f'<meta property="og:image" content="{site.base_url}/img/photo-960.png">' in page
    assert f'<meta property="og:title" content="{POST_HEADLINE}">' in page
    assert f'<meta property="article:author" content="{POST_AUTHOR}">' in page
    assert f'<meta property="article:published_time" content="{POST_PUBLISHED}">' in page
    assert '<script src="/static/app.js"' in page
    assert '<img class="avatar" src="/img/avatar.png"' in page
    assert 'srcset="/img/photo-480.png 480w, /img/photo-960.png 960w"' in page
    assert "sizes=" in page
    for n in range(1, 5):
        assert f'<img src="/img/lazy-{n}.png" loading="lazy"' in page
    # The body text is rendered by JavaScript, so the shell must not carry it.
    assert POST_ARABIC not in page
    assert "🚨" not in page

    blocks = re.findall(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert len(blocks) == 1
    ld = json.loads(blocks[0])
    assert ld["@type"] == "SocialMediaPosting"
    assert ld["author"]["name"] == POST_AUTHOR
    assert ld["datePublished"] == POST_PUBLISHED


def test_post_api_has_multilingual_text(site: SampleSite) -> None:
    reply = _get(site, "/api/post/1")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    post = json.loads(reply.body)
    assert POST_HEADLINE in post["text"]
    assert POST_ARABIC in post["text"]
    assert "🚨" in post["text"] and "🙏" in post["text"]
    assert post["published"] == POST_PUBLISHED


def test_static_assets(site: SampleSite) -> None:
    app = _get(site, "/static/app.js")
    assert app.status == 200
    assert app.headers["Content-Type"].startswith("text/javascript")
    assert "/api/post/" in app.text and "/api/comments?page=" in app.text

    for name in ("media.js", "longpoll.js", "captcha-stub.js"):
        script = _get(site, f"/static/{name}")
        assert script.status == 200 and script.body, name
        assert script.headers["Content-Type"].startswith("text/javascript")

    css = _get(site, "/static/style.css")
    assert css.headers["Content-Type"].startswith("text/css")
    assert 'url("/static/font.woff2")' in css.text

    font = _get(site, "/static/font.woff2")
    assert font.status == 200
    assert font.headers["Content-Type"] == "font/woff2"
    assert font.body[:4] == b"wOF2"
    # The WOFF2 header's length field is the file size.
    assert int.from_bytes(font.body[8:12], "big") == len(font.body)


def test_images_are_distinct_pngs(site: SampleSite) -> None:
    paths = ["/img/avatar.png", "/img/photo-480.png", "/img/photo-960.png"]
    paths += [f"/img/lazy-{n}.png" for n in range(1, 5)]
    bodies = []
    for path in paths:
        reply = _get(site, path)
        assert reply.status == 200, path
        assert reply.headers["Content-Type"] == "image/png"
        assert reply.body.startswith(PNG_SIGNATURE), path
        bodies.append(reply.body)
    assert len(set(bodies)) == len(bodies)
    # photo-960 really is twice the width of photo-480 (IHDR width field).
    assert int.from_bytes(bodies[1][16:20], "big") == 480
    assert int.from_bytes(bodies[2][16:20], "big") == 960


def test_comments_pages(site: SampleSite) -> None:
    texts: list[str] = []
    for page in range(1, COMMENT_PAGES + 1):
        data = json.loads(_get(site, f"/api/comments?page={page}").body)
        assert data["page"] == page
        assert len(data["comments"]) == COMMENTS_PER_PAGE
        texts += [c["text"] for c in data["comments"]]
    end = json.loads(_get(site, f"/api/comments?page={COMMENT_PAGES + 1}").body)
    assert end["comments"] == [] and end["next_page"] is None
    assert len(texts) == 40 == len(set(texts))
    assert texts[16].startswith("Comment 17: ")
    assert _get(site, "/api/comments?page=zero").status == 400


def test_redirect_chain(site: SampleSite) -> None:
    first = _get(site, "/redirect/start")
    assert first.status == 301 and first.headers["Location"] == "/redirect/middle"
    second = _get(site, "/redirect/middle")
    assert second.status == 302 and second.headers["Location"] == "/post/1"
    final = _get(site, "/redirect/start", follow=True)
    assert final.status == 200 and POST_HEADLINE in final.text


def test_redirect_loop(site: SampleSite) -> None:
    assert _get(site, "/redirect/loop").headers["Location"] == "/redirect/loop2"
    assert _get(site, "/redirect/loop2").headers["Location"] == "/redirect/loop"
    reply = _get(site, "/redirect/loop", follow=True)
    assert reply.status == 302  # urllib gives up on the loop


def test_gzip(site: SampleSite) -> None:
    article = _get(site, "/gzip/article")
    assert article.status == 200
    assert article.headers["Content-Encoding"] == "gzip"
    assert int(article.headers["Content-Length"]) == len(article.body)
    assert GZIP_SENTENCE in gzip.decompress(article.body).decode("utf-8")
    assert "/gzip/data.json" in gzip.decompress(article.body).decode("utf-8")

    data = _get(site, "/gzip/data.json")
    assert data.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(data.body))["source"] == "gzip"


def test_chunked(site: SampleSite) -> None:
    reply = _get(site, "/chunked/article")
    assert reply.status == 200
    assert reply.headers["Transfer-Encoding"] == "chunked"
    assert reply.headers["Content-Length"] is None
    assert CHUNKED_SENTENCE in reply.text
    assert reply.text.rstrip().endswith("</html>")


def test_chunked_raw_framing(site: SampleSite) -> None:
    host, port = site.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /chunked/article HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    _, _, body = raw.partition(b"\r\n\r\n")
    sizes = re.findall(rb"(?:^|\r\n)([0-9A-F]+)\r\n", body)
    assert len(sizes) >= 4  # several data chunks before the terminator
    assert body.endswith(b"0\r\n\r\n")


def test_media_body_matches_expected_hash(site: SampleSite) -> None:
    page = _get(site, "/post/1/media?mib=2")
    assert page.status == 200 and "/media/big.bin?mib=2" in page.text
    request = urllib.request.Request(site.url("/media/big.bin?mib=2"))
    digest = hashlib.sha256()
    with _OPENER.open(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert int(response.headers["Content-Length"]) == 2 * 1024 * 1024
        while block := response.read(256 * 1024):
            digest.update(block)
    assert digest.hexdigest() == expected_media_sha256(2)
    assert expected_media_sha256(2) != expected_media_sha256(1)
    assert _get(site, "/media/big.bin?mib=-1").status == 400


def test_media_head(site: SampleSite) -> None:
    reply = _get(site, "/media/big.bin", method="HEAD")
    assert reply.status == 200
    assert int(reply.headers["Content-Length"]) == 160 * 1024 * 1024
    assert reply.body == b""


def test_login_walls(site: SampleSite) -> None:
    login = _get(site, "/login")
    assert login.status == 200
    assert '<input type="password"' in login.text and "Sign in" in login.text

    feed = _get(site, "/private/feed")
    assert feed.status == 302
    assert feed.headers["Location"] == "/login?next=/private/feed"

    basic = _get(site, "/auth/basic")
    assert basic.status == 401
    assert basic.headers["WWW-Authenticate"] == 'Basic realm="members"'

    assert _get(site, "/auth/proxy").status == 407


def test_login_post_never_signs_in(site: SampleSite) -> None:
    request = urllib.request.Request(
        site.url("/login"), data=b"username=a&password=b&next=%2F", method="POST"
    )
    with _OPENER.open(request, timeout=10) as response:
        body = response.read().decode("utf-8")
    assert "Incorrect username or password" in body


@pytest.mark.parametrize(
    ("path", "marker", "script"),
    [
        ("/challenge/recaptcha", 'class="g-recaptcha"', "/recaptcha/api.js"),
        ("/challenge/hcaptcha", 'class="h-captcha"', "/hcaptcha/1/api.js"),
        ("/challenge/turnstile", 'class="cf-turnstile"', "/turnstile/v0/api.js"),
    ],
)
def test_captcha_pages_load_only_local_scripts(
    site: SampleSite, path: str, marker: str, script: str
) -> None:
    page = _get(site, path).text
    assert marker in page
    assert f'<script src="{script}"' in page
    # No absolute URL anywhere: the fixture never points the browser off this host.
    assert "https://" not in page.replace("https://schema.org", "")
    assert _get(site, script).status == 200


def test_human_check(site: SampleSite) -> None:
    page = _get(site, "/challenge/human").text
    assert "Checking your browser" in page.split("</title>")[0]
    assert "Verify you are human" in page
    assert "captcha" not in page.lower() and "turnstile" not in page.lower()


def test_rate_limits() -> None:
    # A fresh instance: /ratelimit/once counts per server.
    with SampleSite() as fresh:
        for _ in range(2):
            reply = _get(fresh, "/ratelimit/always")
            assert reply.status == 429 and reply.headers["Retry-After"] == "1"
        first = _get(fresh, "/ratelimit/once")
        assert first.status == 429 and first.headers["Retry-After"] == "1"
        second = _get(fresh, "/ratelimit/once")
        assert second.status == 200 and POST_HEADLINE in second.text


def test_robots_and_noindex(site: SampleSite) -> None:
    robots = _get(site, "/robots.txt")
    assert robots.status == 200 and robots.text == ROBOTS_TXT
    assert _get(site, "/nocrawl/post").status == 200
    noindex = _get(site, "/noindex")
    assert noindex.headers["X-Robots-Tag"] == "noindex"
    assert '<meta name="robots" content="noindex, nofollow">' in noindex.text


def test_empty_and_broken(site: SampleSite) -> None:
    empty = _get(site, "/empty")
    assert empty.status == 204 and empty.body == b""
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        _get(site, "/broken")


def test_unknown_path_and_method(site: SampleSite) -> None:
    assert _get(site, "/post/2").status == 404
    assert _get(site, "/post/1", method="POST").status == 405


def test_requests_are_logged(site: SampleSite) -> None:
    _get(site, "/api/comments?page=3")
    assert ("GET", "/api/comments?page=3") in site.requests
    snapshot = site.requests
    snapshot.clear()
    assert site.requests  # a copy, not the live log


def _pending(site: SampleSite, path: str) -> tuple[threading.Thread, list[BaseException]]:
    failures: list[BaseException] = []

    def fetch() -> None:
        try:
            with _OPENER.open(site.url(path), timeout=30) as response:
                response.read()
        except BaseException as error:  # the connection is cut by stop()
            failures.append(error)

    thread = threading.Thread(target=fetch, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while ("GET", path) not in site.requests:
        assert time.monotonic() < deadline, f"{path} never reached the server"
        time.sleep(0.01)
    return thread, failures


def test_stop_is_prompt_with_longpoll_pending() -> None:
    site = SampleSite().start()
    thread, failures = _pending(site, "/api/longpoll")
    time.sleep(0.3)
    assert thread.is_alive()  # still waiting: the server sends nothing
    started = time.monotonic()
    site.stop()
    assert time.monotonic() - started < 2
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert failures  # the client saw the connection close, never a response


def test_stop_is_prompt_with_trickle_pending() -> None:
    site = SampleSite().start()
    thread, _ = _pending(site, "/img/trickle.png")
    time.sleep(0.8)
    started = time.monotonic()
    site.stop()
    assert time.monotonic() - started < 2
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_trickle_sends_a_few_bytes_at_a_time() -> None:
    site = SampleSite().start()
    try:
        with _OPENER.open(site.url("/img/trickle.png"), timeout=10) as response:
            assert response.headers["Content-Type"] == "image/png"
            total = int(response.headers["Content-Length"])
            started = time.monotonic()
            head = response.read(8)
            assert head == PNG_SIGNATURE
            assert time.monotonic() - started >= 0.4  # needed a second half-second tick
            assert total > 4000  # the whole image would take minutes
    finally:
        site.stop()


def test_start_twice_and_url_before_start() -> None:
    site = SampleSite()
    with pytest.raises(RuntimeError):
        _ = site.base_url
    site.start()
    try:
        with pytest.raises(RuntimeError):
            site.start()
    finally:
        site.stop()
    site.stop()  # idempotent


def _self_signed(tmp: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls(tmp_path: pathlib.Path) -> None:
    cert_path, key_path = _self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.create_default_context(cafile=str(cert_path))
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=client_context)
    )
    with SampleSite(tls=server_context) as site:
        assert site.base_url.startswith("https://127.0.0.1:")
        for _ in range(2):  # a second connection after the first one closed
            with opener.open(site.url("/post/1"), timeout=10) as response:
                assert response.status == 200
                assert f'content="{site.base_url}/post/1"' in response.read().decode()
        # A client that gives up on the handshake must not disturb the server.
        host, port = site.base_url.removeprefix("https://").split(":")
        socket.create_connection((host, int(port)), timeout=5).close()
        with opener.open(site.url("/robots.txt"), timeout=10) as response:
            assert response.read().decode() == ROBOTS_TXT
        assert site.errors == []
