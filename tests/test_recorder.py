"""The recorder against a fake CDP session: every body path, command by command.

The real-Chromium tests (test_capture_post, test_capture_edges, test_request_gate) show
that captures come out right end to end; they cannot say which CDP command the recorder
sent when, nor make Chromium produce a given race on demand. These tests drive
:class:`~osint_capture.engine.recorder.Recorder` through a scripted stand-in for its
``_CDP`` protocol: the fake records each ``send``, answers from a per-method script, and
fires events at the handlers the recorder registered. The event shapes mirror what
Chromium sends (``Fetch.requestPaused`` with ``requestId``/``networkId``, ``request``,
``resourceType``, ``responseStatusCode``, ``responseHeaders`` as name/value pairs;
``Network.dataReceived`` with base64 ``data``, or with its length only while the bytes
wait in Network's buffer; and so on).

They complement the browser tests and replace none of them: what Chromium really does
was measured there (docs/ARCHITECTURE.md, "How bodies are recorded"), and is only
assumed here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chain_of_custody.timeutil import format_utc
from osint_capture.engine import recorder as recorder_module
from osint_capture.engine.recorder import Exchange, Recorder, RequestGate

# An answer to a command: returned as is, raised, or awaited (to hold the answer back).
Answer = dict[str, Any] | BaseException | asyncio.Future[dict[str, Any]]

NETWORK_ID = "1000.1"
FETCH_ID = "interception-job-1.0"
PAGE = "https://example.test/post/1"
IMAGE = "https://cdn.example.test/photo.jpg"
MIB = 1024 * 1024
STREAM = "Network.streamResourceContent"
# What Chromium answers a document's stream when the document finished before it committed.
ALREADY_FINISHED = (
    "Protocol error (Network.streamResourceContent): "
    "Request with the provided ID has already finished loading"
)
NO_DATA = (
    "Protocol error (Network.getResponseBody): No data found for resource with given identifier"
)


class ProtocolError(Exception):
    """What Playwright raises when Chromium answers a command with an error."""


class FakeCDP:
    """A CDP session that records commands, answers from a script and fires events."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self._handlers: dict[str, list[Callable[..., Any]]] = defaultdict(list)
        self._script: dict[str, deque[Answer]] = defaultdict(deque)

    def answer(self, method: str, *answers: Answer) -> None:
        """Queue answers for ``method``, one per call; once used up, calls get ``{}``."""
        self._script[method].extend(answers)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self.sent.append((method, dict(params or {})))
        queue = self._script.get(method)
        if not queue:
            return {}
        answer = queue.popleft()
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, asyncio.Future):
            return await answer
        return answer

    def on(self, event: str, f: Callable[..., Any]) -> None:
        self._handlers[event].append(f)

    def emit(self, event: str, params: dict[str, Any]) -> None:
        handlers = self._handlers.get(event)
        assert handlers, f"the recorder does not listen to {event}"
        for handler in list(handlers):
            handler(params)

    def methods(self) -> list[str]:
        return [method for method, _ in self.sent]

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [params for sent, params in self.sent if sent == method]


# -- running the scenarios ------------------------------------------------------------


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one async scenario in its own loop, bounded so that a hang fails fast."""
    asyncio.run(asyncio.wait_for(scenario(), timeout=5))


async def settle() -> None:
    """Let the tasks the recorder spawned run as far as the script lets them."""
    for _ in range(30):
        await asyncio.sleep(0)


async def until(predicate: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"never happened: {what}")


async def soon(predicate: Callable[[], bool], what: str, seconds: float = 1.0) -> None:
    """As :func:`until`, for what the recorder waits for by the clock (it polls)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            await settle()
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def started(
    tmp_path: Path, *, size_limit: int = 1 << 30, gate: RequestGate | None = None
) -> tuple[FakeCDP, Recorder]:
    cdp = FakeCDP()
    recorder = Recorder(cdp, tmp_path / "bodies", size_limit=size_limit, gate=gate)
    await recorder.start()
    cdp.sent.clear()
    return cdp, recorder


async def pause(cdp: FakeCDP, params: dict[str, Any]) -> None:
    cdp.emit("Fetch.requestPaused", params)
    await settle()


# -- CDP events, shaped as Chromium sends them --------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def will_be_sent(
    url: str,
    *,
    network_id: str = NETWORK_ID,
    resource_type: str = "Image",
    initiator: str = "parser",
    wall_time: float | None = None,
    redirect_response: dict[str, Any] | None = None,
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "requestId": network_id,
        "loaderId": "loader-1",
        "documentURL": PAGE,
        "request": {"url": url, "method": "GET", "headers": {"Accept": "*/*"}},
        "timestamp": 1.0,
        "type": resource_type,
        "initiator": {"type": initiator},
    }
    if wall_time is not None:
        params["wallTime"] = wall_time
    if redirect_response is not None:
        params["redirectResponse"] = redirect_response
    return params


def paused_request(
    url: str,
    *,
    fetch_id: str = FETCH_ID,
    network_id: str = NETWORK_ID,
    resource_type: str = "Image",
) -> dict[str, Any]:
    return {
        "requestId": fetch_id,
        "networkId": network_id,
        "frameId": "frame-1",
        "resourceType": resource_type,
        "request": {
            "url": url,
            "method": "GET",
            "headers": {"Accept": "*/*", "User-Agent": "Chromium"},
        },
    }


def paused_response(
    url: str,
    *,
    fetch_id: str = FETCH_ID,
    network_id: str = NETWORK_ID,
    resource_type: str = "Image",
    status: int = 200,
    status_text: str = "OK",
    headers: Sequence[tuple[str, str]] = (("Content-Type", "image/jpeg"),),
    method: str = "GET",
) -> dict[str, Any]:
    params = paused_request(
        url, fetch_id=fetch_id, network_id=network_id, resource_type=resource_type
    )
    params["request"]["method"] = method
    params["responseStatusCode"] = status
    params["responseStatusText"] = status_text
    params["responseHeaders"] = [{"name": name, "value": value} for name, value in headers]
    return params


def data_received(chunk: bytes, *, network_id: str = NETWORK_ID) -> dict[str, Any]:
    return {
        "requestId": network_id,
        "timestamp": 2.0,
        "dataLength": len(chunk),
        "encodedDataLength": len(chunk),
        "data": b64(chunk),
    }


def data_announced(length: int, *, network_id: str = NETWORK_ID) -> dict[str, Any]:
    """``Network.dataReceived`` before the stream is on: the length only, the bytes wait
    in Network's buffer (they come back as ``bufferedData`` or ``getResponseBody``)."""
    return {
        "requestId": network_id,
        "timestamp": 2.0,
        "dataLength": length,
        "encodedDataLength": length,
    }


def loading_finished(*, network_id: str = NETWORK_ID) -> dict[str, Any]:
    return {"requestId": network_id, "timestamp": 3.0, "encodedDataLength": 0}


def loading_failed(
    error_text: str, *, network_id: str = NETWORK_ID, canceled: bool = False
) -> dict[str, Any]:
    return {
        "requestId": network_id,
        "timestamp": 3.0,
        "type": "Image",
        "errorText": error_text,
        "canceled": canceled,
    }


def assert_body(recorder: Recorder, exchange: Exchange, expected: bytes) -> None:
    """The body file holds exactly ``expected``, and the exchange's size and digest agree."""
    assert exchange.body_path is not None
    assert exchange.body_path.parent == recorder._body_dir
    assert exchange.body_path.name == f"{exchange.order:06d}.body"
    assert exchange.body_path.read_bytes() == expected
    assert exchange.body_size == len(expected)
    assert exchange.body_sha256 == hashlib.sha256(expected).hexdigest()


async def stream_started(
    cdp: FakeCDP, url: str = IMAGE, *, buffered: bytes = b"", **response: Any
) -> None:
    """Take a sub-resource through both pauses; the stream answer carries ``buffered``."""
    cdp.answer("Network.streamResourceContent", {"bufferedData": b64(buffered)})
    cdp.emit("Network.requestWillBeSent", will_be_sent(url))
    await pause(cdp, paused_request(url))
    await pause(cdp, paused_response(url, **response))


def held(cdp: FakeCDP, method: str) -> asyncio.Future[dict[str, Any]]:
    """Queue an answer for ``method`` that the scenario gives (or fails) when it wants."""
    answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
    cdp.answer(method, answer)
    return answer


async def document_paused(
    cdp: FakeCDP,
    url: str = PAGE,
    *,
    headers: Sequence[tuple[str, str]] = (("Content-Type", "text/html; charset=utf-8"),),
) -> None:
    """Announce a navigation (in flight) and pause its response; the request stage is
    covered above and left out here."""
    cdp.emit(
        "Network.requestWillBeSent",
        will_be_sent(url, resource_type="Document", initiator="other"),
    )
    await pause(cdp, paused_response(url, resource_type="Document", headers=headers))


def but_the_stream_ask(cdp: FakeCDP) -> list[tuple[str, dict[str, Any]]]:
    """What was sent, leaving out ``Network.streamResourceContent``.

    Where a document's stream ask falls against its ``Fetch.continueResponse`` is pinned
    by one test alone (test_document_stream_is_asked_before_the_response_is_let_go),
    so that the others say what they are about and no more.
    """
    return [(method, params) for method, params in cdp.sent if method != STREAM]


# -- lifecycle ------------------------------------------------------------------------------


def test_start_enables_network_with_bounded_buffers_and_pauses_both_stages(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp = FakeCDP()
        recorder = Recorder(cdp, tmp_path / "bodies", size_limit=100)
        await recorder.start()
        assert (tmp_path / "bodies").is_dir()
        # A buffer, for what a document receives before the browser commits it (it comes
        # back in the stream answer); bounded, so the browser's copy of bodies stays small.
        assert cdp.sent == [
            # The page's own frame: only its document is streamed.
            ("Page.getFrameTree", {}),
            ("Network.enable", {"maxTotalBufferSize": 32 * MIB, "maxResourceBufferSize": 16 * MIB}),
            (
                "Fetch.enable",
                {
                    "patterns": [
                        {"urlPattern": "*", "requestStage": "Request"},
                        {"urlPattern": "*", "requestStage": "Response"},
                    ]
                },
            ),
        ]

    run(scenario)


# -- the request stage ----------------------------------------------------------------------


def test_allowed_request_is_continued_after_the_gate_saw_it(tmp_path: Path) -> None:
    seen: list[str] = []

    async def gate(url: str) -> tuple[str, str] | None:
        seen.append(url)
        return None

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, gate=gate)
        await pause(cdp, paused_request(IMAGE))
        assert seen == [IMAGE]
        assert cdp.sent == [("Fetch.continueRequest", {"requestId": FETCH_ID})]
        assert recorder.blocked == []
        assert recorder.exchanges == []  # an exchange begins with its response

    run(scenario)


def test_gate_blocks_a_request_at_the_request_stage_and_never_continues_it(
    tmp_path: Path,
) -> None:
    blocked_url = "https://blocked.example.test/internal.png"

    async def gate(url: str) -> tuple[str, str] | None:
        return ("access", "test rule: this address is not public") if url == blocked_url else None

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, gate=gate)
        cdp.emit("Network.requestWillBeSent", will_be_sent(blocked_url))
        await pause(cdp, paused_request(blocked_url))
        assert cdp.sent == [
            ("Fetch.failRequest", {"requestId": FETCH_ID, "errorReason": "BlockedByClient"})
        ]
        [block] = recorder.blocked
        assert (block.url, block.rule, block.reason) == (
            blocked_url,
            "access",
            "test rule: this address is not public",
        )
        assert block.time.endswith("Z")
        # Chromium reports the blocked load failed; there is no exchange to mark.
        cdp.emit("Network.loadingFailed", loading_failed("net::ERR_BLOCKED_BY_CLIENT"))
        assert recorder.exchanges == []
        assert recorder.inflight == 0
        assert recorder.errors == []

    run(scenario)


def test_gate_that_raises_does_not_let_the_request_out(tmp_path: Path) -> None:
    async def gate(url: str) -> tuple[str, str] | None:
        raise OSError("resolver failed")

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, gate=gate)
        await pause(cdp, paused_request(IMAGE))
        # Blocked by the access rules, so the capture is partial and says why.
        (blocked,) = recorder.blocked
        assert blocked.rule == "access" and "could not check" in blocked.reason
        assert "resolver failed" in blocked.reason
        assert "Fetch.continueRequest" not in cdp.methods()
        assert cdp.calls("Fetch.failRequest") == [
            {"requestId": FETCH_ID, "errorReason": "BlockedByClient"}
        ]

    run(scenario)


def test_response_error_pause_is_continued_without_an_exchange(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        params = paused_request(IMAGE)
        params["responseErrorReason"] = "ConnectionRefused"
        await pause(cdp, params)
        assert cdp.sent == [("Fetch.continueRequest", {"requestId": FETCH_ID})]
        assert recorder.exchanges == []

    run(scenario)


# -- redirect hops ------------------------------------------------------------------------


def test_redirect_hop_is_kept_as_its_own_exchange(tmp_path: Path) -> None:
    old, new = "https://example.test/p/1", "https://example.test/post/1"
    hop_fetch, final_fetch = "interception-job-1.0", "interception-job-1.1"
    page = b"<html><body>the post</body></html>"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(STREAM, {"bufferedData": b64(page)})
        cdp.emit(
            "Network.requestWillBeSent",
            will_be_sent(old, resource_type="Document", initiator="other", wall_time=1.7e9),
        )
        await pause(cdp, paused_request(old, fetch_id=hop_fetch, resource_type="Document"))
        await pause(
            cdp,
            paused_response(
                old,
                fetch_id=hop_fetch,
                resource_type="Document",
                status=301,
                status_text="Moved Permanently",
                headers=[("Location", "/post/1"), ("Content-Length", "0")],
            ),
        )
        [hop] = recorder.exchanges
        assert hop.is_redirect and hop.complete  # a hop is whole once its headers are in
        # Chromium announces the next hop with the redirect response that ended this one.
        redirect = {"url": old, "status": 301, "protocol": "h2", "remoteIPAddress": "192.0.2.7"}
        cdp.emit(
            "Network.requestWillBeSent",
            will_be_sent(
                new,
                resource_type="Document",
                initiator="other",
                wall_time=1.7e9 + 0.25,
                redirect_response=redirect,
            ),
        )
        await pause(cdp, paused_request(new, fetch_id=final_fetch, resource_type="Document"))
        await pause(
            cdp,
            paused_response(
                new,
                fetch_id=final_fetch,
                resource_type="Document",
                headers=[("Content-Type", "text/html; charset=utf-8")],
            ),
        )
        cdp.emit(
            "Network.responseReceived",
            {
                "requestId": NETWORK_ID,
                "type": "Document",
                "response": {"url": new, "status": 200, "remoteIPAddress": "192.0.2.8"},
            },
        )
        cdp.emit("Network.dataReceived", data_announced(len(page)))
        cdp.emit("Network.loadingFinished", loading_finished())

        # The hop is let go without a body; the final response's is streamed.
        assert but_the_stream_ask(cdp) == [
            ("Fetch.continueRequest", {"requestId": hop_fetch}),
            ("Fetch.continueResponse", {"requestId": hop_fetch}),
            ("Fetch.continueRequest", {"requestId": final_fetch}),
            ("Fetch.continueResponse", {"requestId": final_fetch}),
        ]
        assert cdp.calls(STREAM) == [{"requestId": NETWORK_ID}]
        hop, final = recorder.exchanges
        assert (hop.order, final.order) == (0, 1)
        assert hop.network_id == final.network_id == NETWORK_ID
        assert hop.is_redirect and hop.complete
        assert (hop.status, hop.status_text, hop.location) == (301, "Moved Permanently", "/post/1")
        assert hop.body_path is None and hop.body_sha256 is None and hop.body_size == 0
        assert hop.truncated is None
        assert (hop.protocol, hop.remote_ip) == ("h2", "192.0.2.7")
        assert hop.request_time == format_utc(datetime.fromtimestamp(1.7e9, UTC))

        assert not final.is_redirect
        assert (final.url, final.status, final.complete, final.truncated) == (new, 200, True, None)
        assert final.remote_ip == "192.0.2.8"
        assert final.request_time == format_utc(datetime.fromtimestamp(1.7e9 + 0.25, UTC))
        assert_body(recorder, final, page)
        assert recorder.inflight == 0
        assert recorder.errors == []

    run(scenario)


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)], ids=["head", "204", "304"]
)
def test_response_without_a_body_is_continued_without_reading_one(
    tmp_path: Path, method: str, status: int
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        await pause(cdp, paused_response(IMAGE, status=status, method=method))
        assert cdp.sent == [("Fetch.continueResponse", {"requestId": FETCH_ID})]
        [exchange] = recorder.exchanges
        assert exchange.body_path is None
        assert not exchange.complete  # until the browser says the load finished
        cdp.emit("Network.loadingFinished", loading_finished())
        assert exchange.complete

    run(scenario)


# -- streamed sub-resource bodies ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "content_type"), [("Image", "image/jpeg"), ("Script", "text/javascript")]
)
def test_streamed_body_is_the_buffered_data_then_each_data_received_chunk(
    tmp_path: Path, resource_type: str, content_type: str
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer("Network.streamResourceContent", {"bufferedData": b64(b"\x00head-")})
        cdp.emit("Network.requestWillBeSent", will_be_sent(IMAGE, resource_type=resource_type))
        await pause(cdp, paused_request(IMAGE, resource_type=resource_type))
        await pause(
            cdp,
            paused_response(
                IMAGE,
                resource_type=resource_type,
                headers=[("Content-Type", content_type), ("Content-Encoding", "gzip")],
            ),
        )
        # The stream is opened with the network id while the response is still paused,
        # and only then is the response let go: no byte can slip past.
        assert cdp.sent == [
            ("Fetch.continueRequest", {"requestId": FETCH_ID}),
            ("Network.streamResourceContent", {"requestId": NETWORK_ID}),
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
        ]
        [exchange] = recorder.exchanges
        assert (exchange.url, exchange.resource_type, exchange.frame_id) == (
            IMAGE,
            resource_type,
            "frame-1",
        )
        assert exchange.response_headers == [
            ("Content-Type", content_type),
            ("Content-Encoding", "gzip"),
        ]
        assert exchange.request_headers == {"Accept": "*/*", "User-Agent": "Chromium"}
        assert recorder.inflight == 1
        for chunk in (b"middle-", b"", b"tail\xff"):
            cdp.emit("Network.dataReceived", data_received(chunk))
        # No data: the bytes this announces came in the buffered data (counted, not kept twice).
        cdp.emit("Network.dataReceived", data_announced(len(b"\x00head-")))
        assert not exchange.complete
        cdp.emit("Network.loadingFinished", loading_finished())

        assert exchange.complete and exchange.truncated is None and exchange.failure is None
        assert_body(recorder, exchange, b"\x00head-middle-tail\xff")
        assert recorder.total_bytes == len(b"\x00head-middle-tail\xff")
        assert recorder.inflight == 0
        assert recorder.errors == []

    run(scenario)


def test_data_arriving_while_the_stream_answer_is_pending_is_kept_in_order(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        cdp.answer("Network.streamResourceContent", answer)
        cdp.emit("Network.requestWillBeSent", will_be_sent(IMAGE))
        cdp.emit("Fetch.requestPaused", paused_response(IMAGE))
        await until(
            lambda: "Network.streamResourceContent" in cdp.methods(), "the stream requested"
        )
        # Events overtake the answer: they must wait for the buffered bytes, not precede them.
        cdp.emit("Network.dataReceived", data_received(b"two-"))
        cdp.emit("Network.dataReceived", data_received(b"three"))
        cdp.emit("Network.loadingFinished", loading_finished())
        await settle()
        [exchange] = recorder.exchanges
        assert exchange.body_sha256 is None  # the body is not closed before the answer
        assert "Fetch.continueResponse" not in cdp.methods()

        answer.set_result({"bufferedData": b64(b"one-")})
        await until(lambda: "Fetch.continueResponse" in cdp.methods(), "the response let go")
        assert cdp.methods() == ["Network.streamResourceContent", "Fetch.continueResponse"]
        assert exchange.complete and exchange.truncated is None
        assert_body(recorder, exchange, b"one-two-three")
        assert recorder.inflight == 0

    run(scenario)


def test_load_that_cannot_be_streamed_is_read_whole_while_paused(tmp_path: Path) -> None:
    favicon = "https://example.test/favicon.ico"
    icon = b"\x00\x00\x01\x00icon"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(
            "Network.streamResourceContent",
            ProtocolError("Protocol error (Network.streamResourceContent): not supported"),
        )
        cdp.answer("Fetch.getResponseBody", {"body": b64(icon), "base64Encoded": True})
        cdp.emit(
            "Network.requestWillBeSent",
            will_be_sent(favicon, resource_type="Other", initiator="other"),
        )
        await pause(cdp, paused_response(favicon, resource_type="Other"))
        assert cdp.sent == [
            ("Network.streamResourceContent", {"requestId": NETWORK_ID}),
            ("Fetch.getResponseBody", {"requestId": FETCH_ID}),
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
        ]
        [exchange] = recorder.exchanges
        # Chromium may never report this load finished: the whole body in hand is enough.
        assert exchange.complete and exchange.truncated is None and exchange.failure is None
        assert exchange.browser_initiated
        assert_body(recorder, exchange, icon)
        assert recorder.errors == []

    run(scenario)


def test_load_that_cannot_be_streamed_nor_read_is_marked_and_the_response_continues(
    tmp_path: Path,
) -> None:
    favicon = "https://example.test/favicon.ico"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(STREAM, ProtocolError("Protocol error (Network.streamResourceContent): no"))
        cdp.answer(
            "Fetch.getResponseBody",
            ProtocolError("Protocol error (Fetch.getResponseBody): No data found"),
        )
        await pause(cdp, paused_response(favicon, resource_type="Other"))
        assert cdp.methods() == [STREAM, "Fetch.getResponseBody", "Fetch.continueResponse"]
        [exchange] = recorder.exchanges
        assert exchange.truncated == "unspecified"
        assert exchange.failure is not None and "No data found" in exchange.failure
        assert not exchange.canceled
        assert_body(recorder, exchange, b"")
        assert recorder.errors == []  # the exchange carries the failure

    run(scenario)


def test_whole_body_that_does_not_arrive_in_time_is_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "_WHOLE_BODY_TIMEOUT", 0.01)
    favicon = "https://example.test/favicon.ico"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(STREAM, ProtocolError("Protocol error (Network.streamResourceContent): no"))
        held(cdp, "Fetch.getResponseBody")
        cdp.emit("Fetch.requestPaused", paused_response(favicon, resource_type="Other"))
        await soon(lambda: "Fetch.continueResponse" in cdp.methods(), "the response let go")
        assert cdp.methods() == [STREAM, "Fetch.getResponseBody", "Fetch.continueResponse"]
        [exchange] = recorder.exchanges
        assert exchange.truncated == "time"
        assert exchange.failure == "the body did not arrive in time"
        assert_body(recorder, exchange, b"")

    run(scenario)


# -- documents --------------------------------------------------------------------------
#
# Chromium answers a navigation's stream only once it has committed it, which it cannot
# while the response is paused: the stream is asked for, the response let go, and only
# then is the answer awaited.


def test_document_stream_is_asked_before_the_response_is_let_go(tmp_path: Path) -> None:
    # As for sub-resources, the ask must reach the browser while the response is still
    # paused. The recorder schedules it (ensure_future) and then awaits continueResponse
    # directly, so continueResponse is sent first; Playwright's CDPSession.send, like this
    # fake's, sends nothing before its coroutine runs.
    async def scenario() -> None:
        cdp, _ = await started(tmp_path)
        answer = held(cdp, STREAM)
        await document_paused(cdp)
        answer.set_result({})
        await settle()
        assert cdp.sent == [
            (STREAM, {"requestId": NETWORK_ID}),
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
        ]

    run(scenario)


def test_document_response_is_let_go_before_its_stream_answer_is_awaited(
    tmp_path: Path,
) -> None:
    page = b"<html><body>the post</body></html>"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer = held(cdp, STREAM)
        await document_paused(cdp)
        # Let go with the answer still pending: waiting for it first would never end.
        assert but_the_stream_ask(cdp) == [("Fetch.continueResponse", {"requestId": FETCH_ID})]
        assert cdp.calls(STREAM) == [{"requestId": NETWORK_ID}]
        [exchange] = recorder.exchanges
        assert exchange.body_sha256 is None  # the body waits for the answer
        assert recorder.inflight == 1

        cdp.emit("Network.dataReceived", data_announced(len(page)))  # before the commit
        answer.set_result({"bufferedData": b64(page)})
        await settle()
        assert exchange.body_path is not None and exchange.body_path.read_bytes() == page
        cdp.emit("Network.loadingFinished", loading_finished())
        assert exchange.complete and exchange.truncated is None and exchange.failure is None
        assert exchange.withheld is None and exchange.aside is None
        assert_body(recorder, exchange, page)
        assert recorder.inflight == 0
        assert len(cdp.sent) == 2  # nothing read twice
        assert recorder.errors == []

    run(scenario)


def test_document_body_is_the_buffered_data_then_the_queued_then_the_later_chunks(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer = held(cdp, STREAM)
        await document_paused(cdp)
        [exchange] = recorder.exchanges
        # Before the commit: announced only, the bytes are in Network's buffer.
        cdp.emit("Network.dataReceived", data_announced(len(b"<html>one-")))
        # Streaming is on but the answer has not been handled: these wait behind it.
        cdp.emit("Network.dataReceived", data_received(b"two-"))
        cdp.emit("Network.dataReceived", data_received(b"three-"))
        await settle()
        assert exchange.body_sha256 is None
        answer.set_result({"bufferedData": b64(b"<html>one-")})
        await settle()
        assert exchange.body_path is not None
        assert exchange.body_path.read_bytes() == b"<html>one-two-three-"
        cdp.emit("Network.dataReceived", data_received(b"four</html>"))
        assert not exchange.complete
        cdp.emit("Network.loadingFinished", loading_finished())
        assert exchange.complete and exchange.truncated is None and exchange.failure is None
        assert_body(recorder, exchange, b"<html>one-two-three-four</html>")
        assert recorder.total_bytes == len(b"<html>one-two-three-four</html>")

    run(scenario)


def test_document_finished_before_its_stream_answer_is_closed_by_the_answer(
    tmp_path: Path,
) -> None:
    page = b"<html>small</html>"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer = held(cdp, STREAM)
        await document_paused(cdp)
        cdp.emit("Network.dataReceived", data_announced(len(page)))
        cdp.emit("Network.loadingFinished", loading_finished())
        [exchange] = recorder.exchanges
        assert exchange.body_sha256 is None  # not closed before the answer
        assert recorder.inflight == 0
        answer.set_result({"bufferedData": b64(page)})
        await settle()
        assert exchange.complete and exchange.truncated is None
        assert_body(recorder, exchange, page)

    run(scenario)


@pytest.mark.parametrize(
    ("frame", "status"), [("child-frame", 200), ("frame-1", 404)], ids=["frame", "error-status"]
)
def test_a_frame_or_an_error_answer_is_read_whole_not_streamed(
    tmp_path: Path, frame: str, status: int
) -> None:
    # Chromium may put its own page in place of these (a frame that forbids framing is
    # blocked, an empty error answer becomes its error page): the server's bytes are
    # read while the response is paused.
    async def scenario() -> None:
        cdp = FakeCDP()
        cdp.answer("Page.getFrameTree", {"frameTree": {"frame": {"id": "frame-1"}}})
        recorder = Recorder(cdp, tmp_path / "bodies", size_limit=1 << 30)
        await recorder.start()
        cdp.sent.clear()
        cdp.answer("Fetch.getResponseBody", {"body": b64(b"server bytes"), "base64Encoded": True})
        params = paused_response(PAGE, resource_type="Document", status=status)
        params["frameId"] = frame
        params["responseHeaders"] = [{"name": "Content-Type", "value": "text/html"}]
        await pause(cdp, params)
        assert cdp.sent == [
            ("Fetch.getResponseBody", {"requestId": FETCH_ID}),
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
        ]
        [exchange] = recorder.exchanges
        assert_body(recorder, exchange, b"server bytes")

    run(scenario)


def test_document_failing_before_its_stream_answer_keeps_what_arrived(tmp_path: Path) -> None:
    # The load fails (the connection drops) while the stream answer, holding the bytes
    # that came first, is still on its way: those bytes are kept, and the body is cut.
    head = b"<html><body>the first part"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer = held(cdp, STREAM)
        await document_paused(cdp)
        cdp.emit("Network.dataReceived", data_announced(len(head)))
        cdp.emit("Network.loadingFailed", loading_failed("net::ERR_CONNECTION_RESET"))
        [exchange] = recorder.exchanges
        assert exchange.body_sha256 is None  # not closed before the answer
        answer.set_result({"bufferedData": b64(head)})
        await settle()
        assert exchange.truncated == "disconnect" and not exchange.complete
        assert exchange.failure == "net::ERR_CONNECTION_RESET"
        assert_body(recorder, exchange, head)

    run(scenario)


def test_empty_error_page_without_a_length_is_whole(tmp_path: Path) -> None:
    # Chromium "fails" an error status with no body to show its own page; a chunked or
    # HTTP/2 answer declares no length, and its empty body is still the whole answer.
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer("Fetch.getResponseBody", {"body": "", "base64Encoded": False})
        cdp.emit("Network.requestWillBeSent", will_be_sent(PAGE, resource_type="Document"))
        await pause(
            cdp,
            paused_response(
                PAGE,
                resource_type="Document",
                status=404,
                headers=[("Content-Type", "text/html"), ("Transfer-Encoding", "chunked")],
            ),
        )
        cdp.emit("Network.loadingFailed", loading_failed("net::ERR_HTTP_RESPONSE_CODE_FAILURE"))
        await settle()
        [exchange] = recorder.exchanges
        assert exchange.complete and exchange.truncated is None
        assert_body(recorder, exchange, b"")

    run(scenario)


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "text/html")],
        [("Content-Type", "text/html"), ("Content-Length", str(16 * MIB))],
        [
            ("Content-Type", "text/html"),
            ("Content-Length", str(17 * MIB)),
            ("Content-Encoding", "gzip"),
        ],
    ],
    ids=["html", "html-of-16mib", "gzip-html-over-16mib"],
)
def test_document_of_bounded_size_is_streamed_to_the_browser_not_withheld(
    tmp_path: Path, headers: list[tuple[str, str]]
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(STREAM, {"bufferedData": b64(b"x")})
        await document_paused(cdp, headers=headers)
        cdp.emit("Network.loadingFinished", loading_finished())
        assert but_the_stream_ask(cdp) == [("Fetch.continueResponse", {"requestId": FETCH_ID})]
        assert cdp.calls(STREAM) == [{"requestId": NETWORK_ID}]
        [exchange] = recorder.exchanges
        assert exchange.withheld is None
        assert exchange.complete and exchange.truncated is None
        assert_body(recorder, exchange, b"x")

    run(scenario)


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "video/mp4"), ("Content-Length", "1000")],
        [("Content-Type", "application/pdf"), ("Content-Length", str(4 * MIB))],
        [("Content-Type", "application/pdf"), ("Content-Disposition", "inline; filename=a.pdf")],
        # A text type Chromium downloads, though no Content-Disposition says so.
        [("Content-Type", "text/csv; charset=utf-8"), ("Content-Length", "1000")],
    ],
    ids=["small-video", "pdf-of-4mib", "inline-pdf", "csv"],
)
def test_document_blink_does_not_render_itself_is_read_whole_while_paused(
    tmp_path: Path, headers: list[tuple[str, str]]
) -> None:
    # For a PDF the renderer is handed the page of Chromium's own viewer, not the file:
    # streaming would record that page as the server's answer.
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer("Fetch.getResponseBody", {"body": b64(b"%PDF-1.4 x"), "base64Encoded": True})
        await document_paused(cdp, headers=headers)
        cdp.emit("Network.loadingFinished", loading_finished())
        assert cdp.sent == [
            ("Fetch.getResponseBody", {"requestId": FETCH_ID}),
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
        ]
        [exchange] = recorder.exchanges
        assert exchange.withheld is None
        assert exchange.complete and exchange.truncated is None
        assert_body(recorder, exchange, b"%PDF-1.4 x")

    run(scenario)


@pytest.mark.parametrize("base64_encoded", [True, False], ids=["base64", "text"])
def test_document_finished_before_it_was_committed_is_read_from_the_buffer(
    tmp_path: Path, base64_encoded: bool
) -> None:
    page = "<html><body>Grüße, 世界</body></html>"
    body = b64(page.encode("utf-8")) if base64_encoded else page

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer = held(cdp, STREAM)
        cdp.answer("Network.getResponseBody", {"body": body, "base64Encoded": base64_encoded})
        await document_paused(cdp)
        cdp.emit("Network.dataReceived", data_announced(len(page.encode("utf-8"))))
        cdp.emit("Network.loadingFinished", loading_finished())
        answer.set_exception(ProtocolError(ALREADY_FINISHED))
        await settle()
        # Network's buffer, by the network id; the paused request is long gone.
        assert but_the_stream_ask(cdp) == [
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
            ("Network.getResponseBody", {"requestId": NETWORK_ID}),
        ]
        [exchange] = recorder.exchanges
        assert exchange.complete and exchange.truncated is None and exchange.failure is None
        assert_body(recorder, exchange, page.encode("utf-8"))
        assert recorder.inflight == 0
        assert recorder.errors == []

    run(scenario)


def test_document_whose_buffer_cannot_be_read_either_is_marked_cut(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer = held(cdp, STREAM)
        cdp.answer("Network.getResponseBody", ProtocolError(NO_DATA))
        await document_paused(cdp)
        cdp.emit("Network.dataReceived", data_announced(20 * MIB))  # past the buffer
        cdp.emit("Network.loadingFinished", loading_finished())
        answer.set_exception(ProtocolError(f"{ALREADY_FINISHED}\nCall log: ..."))
        await settle()
        assert but_the_stream_ask(cdp) == [
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
            ("Network.getResponseBody", {"requestId": NETWORK_ID}),
        ]
        [exchange] = recorder.exchanges
        assert exchange.truncated == "unspecified"
        # Both reasons, each on its first line only.
        assert exchange.failure == f"the document could not be read: {ALREADY_FINISHED}; {NO_DATA}"
        assert not exchange.canceled
        assert_body(recorder, exchange, b"")
        assert recorder.errors == []  # the exchange carries the failure

    run(scenario)


def test_empty_document_that_finished_is_whole_though_its_buffer_cannot_be_read(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer = held(cdp, STREAM)
        cdp.answer("Network.getResponseBody", ProtocolError(NO_DATA))
        await document_paused(cdp)
        cdp.emit("Network.loadingFinished", loading_finished())  # not a byte received
        answer.set_exception(ProtocolError(ALREADY_FINISHED))
        await settle()
        assert cdp.calls("Network.getResponseBody") == [{"requestId": NETWORK_ID}]
        [exchange] = recorder.exchanges
        assert exchange.complete and exchange.truncated is None and exchange.failure is None
        assert_body(recorder, exchange, b"")

    run(scenario)


def test_document_that_is_not_committed_in_time_is_read_from_the_buffer_once_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "_COMMIT_WAIT", 0.01)
    page = b"<html>late</html>"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        held(cdp, STREAM)  # never answered
        cdp.answer("Network.getResponseBody", {"body": b64(page), "base64Encoded": True})
        await document_paused(cdp)
        cdp.emit("Network.dataReceived", data_announced(len(page)))
        cdp.emit("Network.loadingFinished", loading_finished())
        await soon(lambda: "Network.getResponseBody" in cdp.methods(), "the buffer read")
        [exchange] = recorder.exchanges
        assert exchange.complete and exchange.truncated is None and exchange.failure is None
        assert_body(recorder, exchange, page)

    run(scenario)


def test_document_that_is_neither_committed_nor_finished_in_time_is_marked_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "_COMMIT_WAIT", 0.01)

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        held(cdp, STREAM)  # never answered
        cdp.answer("Network.getResponseBody", ProtocolError(NO_DATA))
        await document_paused(cdp)
        cdp.emit("Network.dataReceived", data_announced(100))
        # The commit wait, then the bounded wait for the load, then the buffer.
        await soon(lambda: recorder.exchanges[0].truncated is not None, "the document cut")
        assert but_the_stream_ask(cdp) == [
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
            ("Network.getResponseBody", {"requestId": NETWORK_ID}),
        ]
        [exchange] = recorder.exchanges
        assert exchange.truncated == "unspecified" and not exchange.complete
        assert exchange.failure == f"the document could not be read: TimeoutError; {NO_DATA}"
        assert_body(recorder, exchange, b"")
        # Finishing late changes nothing: the body is closed.
        cdp.emit("Network.loadingFinished", loading_finished())
        assert exchange.truncated == "unspecified" and not exchange.complete

    run(scenario)


def test_document_finishing_while_the_buffer_read_waits_for_it_keeps_its_body(
    tmp_path: Path,
) -> None:
    # The stream fails before loadingFinished arrives; _read_buffered waits for the load
    # to finish. _on_finished then finds the sink still registered (no pending data any
    # more) and closes it, empty: the bytes received are "not recorded", and the body
    # Network.getResponseBody then returns is written to no sink and lost.
    page = b"<html>finished just after</html>"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(STREAM, ProtocolError(ALREADY_FINISHED))
        cdp.answer("Network.getResponseBody", {"body": b64(page), "base64Encoded": True})
        await document_paused(cdp)
        assert "Network.getResponseBody" not in cdp.methods()  # waits for the load
        cdp.emit("Network.dataReceived", data_announced(len(page)))
        cdp.emit("Network.loadingFinished", loading_finished())
        await soon(lambda: "Network.getResponseBody" in cdp.methods(), "the buffer read")
        [exchange] = recorder.exchanges
        assert (exchange.truncated, exchange.failure) == (None, None)
        assert exchange.complete
        assert_body(recorder, exchange, page)

    run(scenario)


def test_document_body_short_of_what_the_browser_received_is_marked_cut(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        answer = held(cdp, STREAM)
        await document_paused(cdp)
        # Network's buffer for one resource overflowed before the commit: the answer
        # holds less than what was announced.
        cdp.emit("Network.dataReceived", data_announced(10))
        answer.set_result({"bufferedData": b64(b"<html>")})
        await settle()
        cdp.emit("Network.dataReceived", data_received(b"</html>"))
        cdp.emit("Network.loadingFinished", loading_finished())
        [exchange] = recorder.exchanges
        assert exchange.truncated == "unspecified" and not exchange.complete
        assert exchange.failure == "4 of 17 bytes the browser received were not recorded"
        assert_body(recorder, exchange, b"<html></html>")

    run(scenario)


def test_sub_resource_body_short_of_what_the_browser_received_is_marked_cut(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        await stream_started(cdp, buffered=b"abc")
        cdp.emit("Network.dataReceived", data_announced(3))  # the buffered bytes
        cdp.emit("Network.dataReceived", data_received(b"def"))
        cdp.emit("Network.dataReceived", data_announced(2))  # announced, never delivered
        cdp.emit("Network.loadingFinished", loading_finished())
        [exchange] = recorder.exchanges
        assert exchange.truncated == "unspecified" and not exchange.complete
        assert exchange.failure == "2 of 8 bytes the browser received were not recorded"
        assert_body(recorder, exchange, b"abcdef")
        assert recorder.errors == []

    run(scenario)


# -- withheld documents -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([("Content-Type", "video/mp4")], "a video/mp4 of unknown length"),
        (
            [("Content-Type", "application/octet-stream; x=1")],
            "a application/octet-stream of unknown length",
        ),
        (
            [("Content-Type", "text/html"), ("Content-Length", str(16 * MIB + 1))],
            f"a text/html of {16 * MIB + 1} bytes",
        ),
        (
            [("Content-Type", "application/pdf"), ("Content-Length", str(4 * MIB + 1))],
            f"a application/pdf of {4 * MIB + 1} bytes",
        ),
        # The browser would start a download (refused) instead of showing it, however small.
        (
            [
                ("Content-Type", "application/pdf"),
                ("Content-Length", "1000"),
                ("Content-Disposition", 'attachment; filename="report.pdf"'),
            ],
            "a file served as a download (application/pdf)",
        ),
        (
            [("Content-Type", "text/html"), ("Content-Disposition", "  Attachment")],
            "a file served as a download (text/html)",
        ),
        ([("Content-Disposition", "attachment")], "a file served as a download (no type)"),
    ],
    ids=[
        "video-unknown-length",
        "octet-stream-unknown-length",
        "html-over-16mib",
        "pdf-over-4mib",
        "attachment-pdf",
        "attachment-html",
        "attachment-no-type",
    ],
)
def test_withheld_document_is_streamed_to_disk_then_aborted(
    tmp_path: Path, headers: list[tuple[str, str]], reason: str
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer("Fetch.takeResponseBodyAsStream", {"stream": "stream-7"})
        cdp.answer(
            "IO.read",
            {"data": b64(b"\x00\x00\x00\x18ftypmp42"), "base64Encoded": True, "eof": False},
            {"data": "plain text chunk", "base64Encoded": False, "eof": False},
            {"data": b64(b"\xff\xfe-last"), "base64Encoded": True, "eof": False},
            {"data": "", "base64Encoded": False, "eof": True},
        )
        cdp.emit("Network.requestWillBeSent", will_be_sent(PAGE, resource_type="Document"))
        await pause(cdp, paused_response(PAGE, resource_type="Document", headers=headers))

        read = ("IO.read", {"handle": "stream-7", "size": 1 << 20})
        assert cdp.sent == [
            ("Fetch.takeResponseBodyAsStream", {"requestId": FETCH_ID}),
            read,
            read,
            read,
            read,
            ("IO.close", {"handle": "stream-7"}),
            ("Fetch.failRequest", {"requestId": FETCH_ID, "errorReason": "Aborted"}),
        ]
        [exchange] = recorder.exchanges
        assert exchange.withheld == reason
        assert exchange.complete and exchange.truncated is None and exchange.failure is None
        assert_body(recorder, exchange, b"\x00\x00\x00\x18ftypmp42plain text chunk\xff\xfe-last")
        # The browser never gets this load; the recorder no longer waits for it.
        assert recorder.inflight == 0
        cdp.emit("Network.loadingFailed", loading_failed("net::ERR_ABORTED"))
        assert exchange.failure is None and not exchange.canceled
        assert recorder.errors == []

    run(scenario)


def test_withheld_document_is_cut_at_the_size_limit(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, size_limit=10)
        cdp.answer("Fetch.takeResponseBodyAsStream", {"stream": "s"})
        cdp.answer(
            "IO.read",
            {"data": b64(b"0123456"), "base64Encoded": True},
            {"data": b64(b"789abc"), "base64Encoded": True},
            {"data": b64(b"never read"), "base64Encoded": True, "eof": True},
        )
        headers = [("Content-Type", "video/webm")]
        await pause(cdp, paused_response(PAGE, resource_type="Document", headers=headers))
        # The page's loading is stopped too (a task of its own, so in any order with the
        # stream's close): the limit bounds what the browser receives.
        assert sorted(cdp.methods()) == sorted(
            [
                "Fetch.takeResponseBodyAsStream",
                "IO.read",
                "IO.read",
                "Page.stopLoading",
                "IO.close",
                "Fetch.failRequest",
            ]
        )
        [exchange] = recorder.exchanges
        assert exchange.truncated == "length" and not exchange.complete
        assert recorder.size_limit_reached and recorder.total_bytes == 10
        assert_body(recorder, exchange, b"0123456789")

    run(scenario)


def test_withheld_document_whose_stream_breaks_is_kept_as_far_as_it_got(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer("Fetch.takeResponseBodyAsStream", {"stream": "s"})
        cdp.answer(
            "IO.read",
            {"data": b64(b"first"), "base64Encoded": True},
            ProtocolError("Protocol error (IO.read): Read failed"),
        )
        await pause(
            cdp,
            paused_response(
                PAGE, resource_type="Document", headers=[("Content-Type", "audio/ogg")]
            ),
        )
        assert cdp.methods() == [
            "Fetch.takeResponseBodyAsStream",
            "IO.read",
            "IO.read",
            "IO.close",
            "Fetch.failRequest",
        ]
        [exchange] = recorder.exchanges
        assert exchange.truncated == "unspecified" and not exchange.complete
        assert exchange.failure is not None and "Read failed" in exchange.failure
        assert_body(recorder, exchange, b"first")

    run(scenario)


# -- the size limit ---------------------------------------------------------------------------


def test_size_limit_cuts_the_streamed_body_and_blocks_later_requests(tmp_path: Path) -> None:
    gate_saw: list[str] = []

    async def gate(url: str) -> tuple[str, str] | None:
        gate_saw.append(url)
        return None

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, size_limit=10, gate=gate)
        other = "https://cdn.example.test/other.jpg"
        cdp.answer(
            "Network.streamResourceContent",
            {"bufferedData": b64(b"ABCDEF")},
            {"bufferedData": b64(b"12")},
        )
        await pause(cdp, paused_response(IMAGE))
        await pause(
            cdp, paused_response(other, fetch_id="interception-job-2.0", network_id="2000.1")
        )
        first, second = recorder.exchanges
        assert recorder.total_bytes == 8 and not recorder.size_limit_reached

        cdp.sent.clear()
        cdp.emit("Network.dataReceived", data_received(b"GHIJKLMN"))  # only GH fits
        assert recorder.size_limit_reached and recorder.total_bytes == 10
        assert first.truncated == "length"
        assert_body(recorder, first, b"ABCDEFGH")
        cdp.emit("Network.dataReceived", data_received(b"more"))  # nothing more is kept
        cdp.emit("Network.dataReceived", data_received(b"34", network_id="2000.1"))
        assert second.truncated == "length"
        assert_body(recorder, second, b"12")
        cdp.emit("Network.loadingFinished", loading_finished())
        cdp.emit("Network.loadingFinished", loading_finished(network_id="2000.1"))
        assert not first.complete and not second.complete
        assert_body(recorder, first, b"ABCDEFGH")
        assert recorder.total_bytes == 10
        # The page is stopped once, however many bodies the limit cut: the limit bounds
        # what the browser receives, not only what is kept.
        await settle()
        assert cdp.sent == [("Page.stopLoading", {})]

        cdp.sent.clear()
        later = "https://cdn.example.test/later.js"
        await pause(cdp, paused_request(later, fetch_id="interception-job-3.0"))
        assert cdp.sent == [
            (
                "Fetch.failRequest",
                {"requestId": "interception-job-3.0", "errorReason": "BlockedByClient"},
            )
        ]
        assert later not in gate_saw  # no need to ask the access rules
        [block] = recorder.blocked
        assert (block.url, block.rule) == (later, "size-limit")

    run(scenario)


def test_body_that_exactly_fills_the_size_limit_is_kept_whole(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, size_limit=8)
        await stream_started(cdp, buffered=b"1234")
        cdp.emit("Network.dataReceived", data_received(b"5678"))
        cdp.emit("Network.loadingFinished", loading_finished())
        [exchange] = recorder.exchanges
        assert exchange.complete and exchange.truncated is None
        assert_body(recorder, exchange, b"12345678")
        assert recorder.total_bytes == 8

    run(scenario)


def test_size_limit_reached_within_the_buffered_data_cuts_it_there(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, size_limit=4)
        await stream_started(cdp, buffered=b"ABCDEFG")
        [exchange] = recorder.exchanges
        assert cdp.sent == [
            ("Fetch.continueRequest", {"requestId": FETCH_ID}),
            (STREAM, {"requestId": NETWORK_ID}),
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
            ("Page.stopLoading", {}),
        ]
        cdp.emit("Network.dataReceived", data_received(b"HIJ"))
        cdp.emit("Network.loadingFinished", loading_finished())
        assert exchange.truncated == "length" and not exchange.complete
        assert_body(recorder, exchange, b"ABCD")
        assert recorder.size_limit_reached and recorder.total_bytes == 4

    run(scenario)


def test_size_limit_reached_within_a_documents_buffered_data_cuts_it_there(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, size_limit=4)
        answer = held(cdp, STREAM)
        await document_paused(cdp)
        cdp.emit("Network.dataReceived", data_announced(7))
        cdp.emit("Network.dataReceived", data_received(b"queued"))
        answer.set_result({"bufferedData": b64(b"ABCDEFG")})
        await settle()
        cdp.emit("Network.dataReceived", data_received(b"later"))
        cdp.emit("Network.loadingFinished", loading_finished())
        [exchange] = recorder.exchanges
        # Cut for length, not also for the bytes received past the limit.
        assert exchange.truncated == "length" and not exchange.complete
        assert exchange.failure is None
        assert_body(recorder, exchange, b"ABCD")
        assert recorder.total_bytes == 4
        assert cdp.calls("Page.stopLoading") == [{}]

    run(scenario)


def test_size_limit_stops_the_page_even_if_the_browser_refuses(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path, size_limit=2)
        cdp.answer("Page.stopLoading", ProtocolError("Protocol error (Page.stopLoading): gone"))
        await stream_started(cdp, buffered=b"abc")
        cdp.emit("Network.dataReceived", data_received(b"more"))
        await settle()
        assert cdp.calls("Page.stopLoading") == [{}]
        # Nothing more to do about it: the body is cut for length either way.
        assert recorder.errors == []
        [exchange] = recorder.exchanges
        assert exchange.truncated == "length"
        assert_body(recorder, exchange, b"ab")

    run(scenario)


# -- failed and cancelled loads --------------------------------------------------------------


def test_load_failing_mid_stream_keeps_the_bytes_marked_disconnect(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        await stream_started(cdp, buffered=b"parti")
        cdp.emit("Network.dataReceived", data_received(b"al"))
        cdp.emit("Network.loadingFailed", loading_failed("net::ERR_CONNECTION_RESET"))
        [exchange] = recorder.exchanges
        assert exchange.failure == "net::ERR_CONNECTION_RESET"
        assert exchange.truncated == "disconnect"
        assert not exchange.complete and not exchange.canceled
        assert_body(recorder, exchange, b"partial")
        cdp.emit("Network.dataReceived", data_received(b"late"))  # the file is closed
        assert_body(recorder, exchange, b"partial")
        assert recorder.inflight == 0

    run(scenario)


def test_load_failing_after_it_finished_changes_nothing(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        await stream_started(cdp, buffered=b"whole")
        cdp.emit("Network.loadingFinished", loading_finished())
        cdp.emit("Network.loadingFailed", loading_failed("net::ERR_ABORTED", canceled=True))
        [exchange] = recorder.exchanges
        assert exchange.complete
        assert (exchange.failure, exchange.truncated, exchange.canceled) == (None, None, False)
        assert_body(recorder, exchange, b"whole")

    run(scenario)


def test_load_canceled_by_the_browser_is_marked_canceled(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        await stream_started(cdp, buffered=b"half")
        cdp.emit("Network.loadingFailed", loading_failed("net::ERR_ABORTED", canceled=True))
        [exchange] = recorder.exchanges
        assert exchange.canceled
        assert exchange.failure == "net::ERR_ABORTED"
        assert exchange.truncated == "disconnect"
        assert_body(recorder, exchange, b"half")
        assert recorder.errors == []

    run(scenario)


@pytest.mark.parametrize(
    ("failing", "streams"),
    [("Fetch.continueResponse", True), ("Fetch.getResponseBody", False)],
    ids=["continue", "whole-read"],
)
def test_invalid_interception_id_marks_the_exchange_canceled_not_an_error(
    tmp_path: Path, failing: str, streams: bool
) -> None:
    favicon = "https://example.test/favicon.ico"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        if not streams:  # read whole while paused, as the favicon is
            cdp.answer(STREAM, ProtocolError("Protocol error (Network.streamResourceContent): no"))
        cdp.answer(failing, ProtocolError(f"Protocol error ({failing}): Invalid InterceptionId."))
        await pause(cdp, paused_response(favicon, resource_type="Other"))
        [exchange] = recorder.exchanges
        assert exchange.canceled
        assert recorder.errors == []
        # Nothing is waiting on a request the browser dropped: no second attempt.
        assert cdp.methods().count("Fetch.continueResponse") == 1

    run(scenario)


def test_invalid_interception_id_letting_a_document_go_marks_it_canceled(
    tmp_path: Path,
) -> None:
    # _stream_document catches every Exception around its Fetch.continueResponse as if
    # the stream answer had failed, so the error never reaches _handle_paused (which
    # marks a dropped request canceled): the recorder reads Network's buffer instead.
    message = "Protocol error (Fetch.continueResponse): Invalid InterceptionId."

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer("Fetch.continueResponse", ProtocolError(message))
        await document_paused(cdp)
        [exchange] = recorder.exchanges
        assert exchange.canceled
        assert recorder.errors == []
        assert cdp.methods().count("Fetch.continueResponse") == 1
        assert "Network.getResponseBody" not in cdp.methods()

    run(scenario)


def test_other_error_letting_a_document_go_is_recorded(tmp_path: Path) -> None:
    # The same catch-all: a document the browser may still hold paused is not reported.
    message = "Protocol error (Fetch.continueResponse): Internal error"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer("Fetch.continueResponse", ProtocolError(message))
        await document_paused(cdp)
        assert recorder.errors == [f"{PAGE}: {message}"]

    run(scenario)


def test_invalid_interception_id_at_the_request_stage_is_not_an_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(
            "Fetch.continueRequest",
            ProtocolError("Protocol error (Fetch.continueRequest): Invalid InterceptionId."),
        )
        await pause(cdp, paused_request(IMAGE))
        assert cdp.methods() == ["Fetch.continueRequest"]
        assert recorder.errors == [] and recorder.exchanges == []

    run(scenario)


@pytest.mark.parametrize(
    ("failing", "event", "fallback"),
    [
        # Paused before the gate approved it: failed, never let out.
        (
            "Fetch.continueRequest",
            paused_request(IMAGE),
            ("Fetch.failRequest", {"requestId": FETCH_ID, "errorReason": "BlockedByClient"}),
        ),
        (
            "Fetch.continueResponse",
            paused_response(IMAGE),
            ("Fetch.continueResponse", {"requestId": FETCH_ID}),
        ),
    ],
    ids=["request-stage", "response-stage"],
)
def test_other_error_is_recorded_and_the_browser_is_not_left_waiting(
    tmp_path: Path,
    failing: str,
    event: dict[str, Any],
    fallback: tuple[str, dict[str, Any]],
) -> None:
    message = f"Protocol error ({failing}): Internal error"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(failing, ProtocolError(message))
        await pause(cdp, event)
        method, params = fallback
        assert cdp.calls(failing)[0] == {"requestId": FETCH_ID}
        assert cdp.calls(method)[-1] == params
        assert recorder.errors == [f"{IMAGE}: {message}"]
        assert all(not exchange.canceled for exchange in recorder.exchanges)

    run(scenario)


# -- stop() -------------------------------------------------------------------------------


def test_stop_keeps_a_body_still_streaming_marked_truncated_time(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        await stream_started(cdp, buffered=b"so ")
        cdp.emit("Network.dataReceived", data_received(b"far"))
        await recorder.stop()
        [exchange] = recorder.exchanges
        assert exchange.truncated == "time" and not exchange.complete
        assert_body(recorder, exchange, b"so far")
        # After stop, nothing more is written and no paused request is answered.
        cdp.sent.clear()
        cdp.emit("Network.dataReceived", data_received(b" and more"))
        await pause(cdp, paused_request(PAGE, fetch_id="interception-job-9.0"))
        assert cdp.sent == []
        assert_body(recorder, exchange, b"so far")

    run(scenario)


def test_stop_leaves_finished_bodies_alone(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        await stream_started(cdp, buffered=b"done")
        cdp.emit("Network.loadingFinished", loading_finished())
        await recorder.stop()
        [exchange] = recorder.exchanges
        assert exchange.complete and exchange.truncated is None
        assert_body(recorder, exchange, b"done")

    run(scenario)


async def _stop_awaiting_the_stream_answer(tmp_path: Path) -> tuple[Recorder, Exchange]:
    cdp, recorder = await started(tmp_path)
    held(cdp, STREAM)  # never answered: the navigation never commits
    await document_paused(cdp)
    cdp.emit("Network.dataReceived", data_announced(5))
    cdp.emit("Network.dataReceived", data_received(b"queued"))
    [exchange] = recorder.exchanges
    await recorder.stop()
    return recorder, exchange


def test_stop_cuts_a_document_still_awaiting_its_stream_once_its_task_unwinds(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        recorder, exchange = await _stop_awaiting_the_stream_answer(tmp_path)
        await settle()
        assert exchange.truncated == "time" and not exchange.complete
        assert_body(recorder, exchange, b"")  # what waited behind the answer is not kept
        assert recorder.errors == []

    run(scenario)


def test_stop_cuts_a_document_still_awaiting_its_stream_before_it_returns(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        _, exchange = await _stop_awaiting_the_stream_answer(tmp_path)
        assert exchange.truncated == "time"
        assert exchange.body_sha256 == hashlib.sha256(b"").hexdigest()

    run(scenario)


def test_stop_cuts_a_document_still_streaming_as_far_as_it_got(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(STREAM, {"bufferedData": b64(b"<html>so ")})
        await document_paused(cdp)
        cdp.emit("Network.dataReceived", data_received(b"far"))
        await recorder.stop()
        [exchange] = recorder.exchanges
        assert exchange.truncated == "time" and not exchange.complete
        assert_body(recorder, exchange, b"<html>so far")

    run(scenario)


def test_stop_cuts_a_whole_read_once_its_task_unwinds(tmp_path: Path) -> None:
    favicon = "https://example.test/favicon.ico"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.answer(STREAM, ProtocolError("Protocol error (Network.streamResourceContent): no"))
        held(cdp, "Fetch.getResponseBody")
        await pause(cdp, paused_response(favicon, resource_type="Other"))
        [exchange] = recorder.exchanges
        await recorder.stop()
        await settle()
        assert exchange.truncated == "time"
        assert exchange.failure == "the body did not arrive in time"
        assert_body(recorder, exchange, b"")

    run(scenario)


# -- the network-quiet wait -----------------------------------------------------------------


def test_browser_initiated_load_is_recorded_but_does_not_hold_the_quiet_wait(
    tmp_path: Path,
) -> None:
    favicon = "https://example.test/favicon.ico"

    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.emit(
            "Network.requestWillBeSent",
            will_be_sent(favicon, resource_type="Other", initiator="other"),
        )
        assert recorder.inflight == 0 and recorder.inflight_urls() == []
        assert await recorder.wait_quiet(0.0, time.monotonic() + 1)
        cdp.answer("Network.streamResourceContent", {"bufferedData": b64(b"icon")})
        await pause(cdp, paused_response(favicon, resource_type="Other"))
        [exchange] = recorder.exchanges
        assert exchange.browser_initiated
        assert recorder.inflight == 0

        # A load the page made does hold it, until it finishes.
        cdp.emit("Network.requestWillBeSent", will_be_sent(IMAGE, network_id="2000.1"))
        assert recorder.inflight == 1 and recorder.inflight_urls() == [IMAGE]
        assert recorder.quiet_for == 0.0
        assert not await recorder.wait_quiet(0.01, time.monotonic() + 0.05)
        cdp.emit("Network.loadingFinished", loading_finished(network_id="2000.1"))
        assert recorder.inflight == 0
        assert await recorder.wait_quiet(0.0, time.monotonic() + 1)

    run(scenario)


@pytest.mark.parametrize(
    "url",
    [
        "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/index.html",
        "chrome://resources/js/load_time_data.js",
    ],
    ids=["pdf-viewer", "chrome"],
)
def test_load_of_a_browser_page_is_browser_initiated_and_not_waited_for(
    tmp_path: Path, url: str
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        # Chromium's PDF viewer: a frame the page did not ask for, which may never finish.
        cdp.emit("Network.requestWillBeSent", will_be_sent(url, resource_type="Document"))
        assert recorder.inflight == 0 and recorder.inflight_urls() == []
        assert await recorder.wait_quiet(0.0, time.monotonic() + 1)
        cdp.answer(STREAM, {"bufferedData": b64(b"<html>viewer</html>")})
        await pause(
            cdp,
            paused_response(url, resource_type="Document", headers=[("Content-Type", "text/html")]),
        )
        [exchange] = recorder.exchanges
        assert exchange.browser_initiated
        assert recorder.inflight == 0
        cdp.emit("Network.loadingFinished", loading_finished())
        assert exchange.complete
        assert_body(recorder, exchange, b"<html>viewer</html>")

    run(scenario)


@pytest.mark.parametrize("url", [PAGE, "http://example.test/plain"], ids=["https", "http"])
def test_a_web_document_the_page_loads_counts(tmp_path: Path, url: str) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.emit("Network.requestWillBeSent", will_be_sent(url, resource_type="Document"))
        assert recorder.inflight == 1 and recorder.inflight_urls() == [url]

    run(scenario)


def test_a_page_script_of_type_other_still_counts(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.emit("Network.requestWillBeSent", will_be_sent(IMAGE, resource_type="Other"))
        assert recorder.inflight == 1

    run(scenario)


def test_headers_the_paused_response_hides_are_added_from_what_the_network_received(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.emit("Network.requestWillBeSent", will_be_sent(IMAGE))
        await pause(cdp, paused_response(IMAGE, headers=(("Content-Type", "image/jpeg"),)))
        # Chromium keeps Set-Cookie out of the paused response; the raw headers have it.
        raw = {"Content-Type": "image/jpeg", "Set-Cookie": "a=1; Path=/\nb=2; Path=/"}
        cdp.emit(
            "Network.responseReceivedExtraInfo",
            {"requestId": NETWORK_ID, "statusCode": 200, "headers": raw},
        )
        # A hop whose status disagrees is not taken for this one.
        cdp.emit(
            "Network.responseReceivedExtraInfo",
            {"requestId": "other", "statusCode": 404, "headers": {"X-Other": "1"}},
        )
        await recorder.stop()
        recorder.apply_sent_headers()
        (exchange,) = recorder.exchanges
        assert exchange.response_headers == [
            ("Content-Type", "image/jpeg"),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; Path=/"),
        ]

    run(scenario)


def test_received_headers_of_another_status_are_not_applied(tmp_path: Path) -> None:
    async def scenario() -> None:
        cdp, recorder = await started(tmp_path)
        cdp.emit("Network.requestWillBeSent", will_be_sent(IMAGE))
        await pause(cdp, paused_response(IMAGE))
        cdp.emit(
            "Network.responseReceivedExtraInfo",
            {"requestId": NETWORK_ID, "statusCode": 304, "headers": {"Set-Cookie": "x=1"}},
        )
        await recorder.stop()
        recorder.apply_sent_headers()
        assert recorder.exchanges[0].response_headers == [("Content-Type", "image/jpeg")]

    run(scenario)
