"""Record every HTTP exchange the page makes, bodies streamed to disk.

How bodies are obtained (measured facts, see docs/ARCHITECTURE.md):

* CDP ``Fetch`` pauses each request twice. At the *request* stage the
  lawful-access rules look at the target and either let it go or fail it
  (``BlockedByClient``); a blocked request never leaves the browser.
* At the *response* stage the headers are final. For sub-resources the recorder
  calls ``Network.streamResourceContent`` with the response's network id and
  only then lets the response continue, so not a byte is lost: what was buffered
  comes back in the answer, the rest arrives as ``Network.dataReceived`` events
  and is appended to a file as it comes. Memory stays flat for any size.
* Documents (the page itself, frames) are streamed too, however slowly they
  arrive, but in another order: Chromium answers ``Network.streamResourceContent``
  for a navigation only once it has committed it, which it cannot while the
  response is paused. So the stream is asked for, the response let go, and the
  answer awaited; what arrived before the answer is in its ``bufferedData``
  (Network keeps a small buffer for that alone). A document that finished before
  the answer is read from that buffer.
  Only the page's own document is streamed, and only with a success status and a type
  Blink renders itself (HTML, text, XML, SVG, JSON): elsewhere the renderer may not get
  the server's bytes (a PDF becomes the page of Chromium's viewer, an empty error
  answer Chromium's error page, a frame that forbids framing is blocked), so those are
  read whole while paused, as before (bounded to 20 s).
* Every ``dataReceived`` says how many bytes arrived; a body that ends with fewer
  bytes kept than arrived is marked cut, never passed off as whole.
* Past the size limit the page's loading is stopped (``Page.stopLoading``): the
  limit bounds what the browser receives, not only what is kept.
* Redirect hops are paused too; each is kept as its own exchange.

Chromium hands over *decoded* bodies. The exchange keeps the headers exactly as
received; the WARC writer renames the ones that no longer describe the stored
bytes (``Content-Encoding``, ``Content-Length``, ``Transfer-Encoding``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from chain_of_custody.timeutil import format_utc, utc_now
from osint_capture.engine.exchange import BlockedRequest, BodySink, Exchange
from osint_capture.engine.headers import NetworkHeaders
from osint_capture.lawful.rules import RequestGate, redact_url

__all__ = [
    "BlockedRequest",
    "Exchange",
    "Recorder",
    "RequestGate",
]


_DOCUMENT_TYPES = {"Document"}
_IO_CHUNK = 1 << 20
_WHOLE_BODY_TIMEOUT = 20.0
_STOP_WAIT = 5.0
# How long a navigation may take to commit once its response is let go; past this the
# document is read from the buffer when it has finished, else marked cut.
_COMMIT_WAIT = 20.0
# Enough for what a document receives before the browser commits it; bounded, so the
# browser's copy of bodies stays small (the recorder keeps the bytes).
_NETWORK_BUFFER = {"maxTotalBufferSize": 32 << 20, "maxResourceBufferSize": 16 << 20}
# The browser's own pages (its PDF viewer's chrome-extension:// page, error pages).
_BROWSER_SCHEMES = ("chrome-extension:", "chrome:", "chrome-error:", "devtools:")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _CDP(Protocol):
    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any: ...

    def on(self, event: str, f: Callable[..., Any]) -> Any: ...


class Recorder:
    """Attach to a page's CDP session and keep every exchange it makes."""

    def __init__(
        self,
        cdp: _CDP,
        body_dir: Path,
        *,
        size_limit: int,
        gate: RequestGate | None = None,
    ) -> None:
        self._cdp = cdp
        self._body_dir = body_dir
        self._size_limit = size_limit
        self._gate = gate
        self.exchanges: list[Exchange] = []
        self.blocked: list[BlockedRequest] = []
        self.size_limit_reached = False
        self.total_bytes = 0
        self._current: dict[str, Exchange] = {}  # network id -> latest hop
        self._sinks: dict[str, BodySink] = {}
        self._pending_data: dict[str, list[bytes]] = {}
        self._inflight: set[str] = set()
        self._last_activity = time.monotonic()
        self._last_change = self._last_activity
        self._request_info: dict[str, dict[str, Any]] = {}
        self._browser_initiated: set[str] = set()
        self._headers = NetworkHeaders()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._received: dict[str, int] = {}  # network id -> bytes the browser got
        self._loading_stopped = False
        self._main_frame: str | None = None  # the page's own frame (its id never changes)
        self.errors: list[str] = []

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        self._body_dir.mkdir(parents=True, exist_ok=True)
        cdp = self._cdp
        cdp.on("Fetch.requestPaused", self._on_paused)
        cdp.on("Network.requestWillBeSent", self._on_request_will_be_sent)
        cdp.on("Network.requestWillBeSentExtraInfo", self._headers.on_request_extra_info)
        cdp.on("Network.responseReceivedExtraInfo", self._headers.on_response_extra_info)
        cdp.on("Network.responseReceived", self._on_response_received)
        cdp.on("Network.dataReceived", self._on_data)
        cdp.on("Network.loadingFinished", self._on_finished)
        cdp.on("Network.loadingFailed", self._on_failed)
        patterns = [
            {"urlPattern": "*", "requestStage": "Request"},
            {"urlPattern": "*", "requestStage": "Response"},
        ]
        # Sent at once, in this order (a session handles its commands in turn): one round
        # trip to the browser instead of three. Nothing loads before the page is sent off.
        tree, _, _ = await asyncio.gather(
            cdp.send("Page.getFrameTree"),
            cdp.send("Network.enable", _NETWORK_BUFFER),
            cdp.send("Fetch.enable", {"patterns": patterns}),
        )
        frame = tree.get("frameTree", {}).get("frame", {}) if isinstance(tree, dict) else {}
        self._main_frame = frame.get("id")

    async def stop(self) -> None:
        """Stop recording: whatever is still streaming is kept, marked truncated."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            # Let each cancelled handler unwind (marking its body cut) before the bodies
            # are read; bounded, since a handler may be stuck in a call to the browser.
            await asyncio.wait(tasks, timeout=_STOP_WAIT)
        for network_id, sink in list(self._sinks.items()):
            exchange = self._current.get(network_id)
            if exchange is not None and exchange.body_path == sink.path:
                self._close_sink(sink, exchange)
                if not exchange.complete and exchange.truncated is None:
                    exchange.truncated = "time"
                self._check_received(network_id, exchange)
            else:
                sink.close()
        self._sinks.clear()

    # -- what the engine asks --------------------------------------------------

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def inflight_urls(self) -> list[str]:
        return [self._request_info.get(i, {}).get("url", "?") for i in self._inflight]

    @property
    def quiet_for(self) -> float:
        return time.monotonic() - self._last_activity if not self._inflight else 0.0

    def inflight_ids(self) -> frozenset[str]:
        return frozenset(self._inflight)

    def quiet_for_ignoring(self, ignoring: frozenset[str]) -> float:
        """Seconds without a request open, not counting those in ``ignoring``."""
        if not ignoring:
            return self.quiet_for
        # Requests open all along (a long-poll, a trickle) keep sending data: only
        # requests starting and ending count, and only those not ignored must be done.
        return 0.0 if self._inflight - ignoring else time.monotonic() - self._last_change

    async def wait_quiet(
        self, quiet: float, deadline: float, *, ignoring: frozenset[str] = frozenset()
    ) -> bool:
        """Wait until no request has been open for ``quiet`` seconds, or the deadline;
        requests in ``ignoring`` (open before, and perhaps never ending) do not count."""
        while (now := time.monotonic()) < deadline:
            quiet_for = self.quiet_for_ignoring(ignoring)
            if quiet_for >= quiet:
                return True
            # Wake when the quiet period would end, not on the next tick after it.
            await asyncio.sleep(min(0.05, quiet - quiet_for, deadline - now) + 0.001)
        return self.quiet_for_ignoring(ignoring) >= quiet

    # -- event handlers ----------------------------------------------------------

    def _touch(self, *, changed: bool = False) -> None:
        self._last_activity = time.monotonic()
        if changed:  # a request started or ended
            self._last_change = self._last_activity

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_request_will_be_sent(self, params: dict[str, Any]) -> None:
        network_id = params["requestId"]
        wall = params.get("wallTime")
        self._request_info[network_id] = {
            # when this hop was sent, by the browser's clock (a redirect hop overwrites it)
            "sent": format_utc(datetime.fromtimestamp(wall, UTC)) if wall else utc_now(),
            "url": params["request"]["url"],
            "headers": params["request"].get("headers", {}),
        }
        redirect = params.get("redirectResponse")
        if redirect is not None:
            hop = self._current.get(network_id)
            if hop is not None and hop.url == redirect.get("url"):
                self._apply_response_info(hop, redirect)
        internal = str(params["request"]["url"]).startswith(_BROWSER_SCHEMES)
        if internal or (
            params.get("type") == "Other" and params.get("initiator", {}).get("type") == "other"
        ):
            # Chromium sometimes finishes the favicon load only much later, or never
            # reports it; its own loads (the PDF viewer's chrome-extension:// page) may
            # never finish: the page is quiet without them.
            self._browser_initiated.add(network_id)
        else:
            self._inflight.add(network_id)
        self._touch(changed=True)

    def apply_sent_headers(self) -> None:
        """Give each exchange the headers the network stack really sent and received
        (:class:`~osint_capture.engine.headers.NetworkHeaders`)."""
        self._headers.apply(self.exchanges)

    def _apply_response_info(self, exchange: Exchange, response: dict[str, Any]) -> None:
        exchange.protocol = response.get("protocol") or exchange.protocol
        exchange.remote_ip = response.get("remoteIPAddress") or exchange.remote_ip
        port = response.get("remotePort")
        exchange.remote_port = int(port) if port else exchange.remote_port
        exchange.security_details = response.get("securityDetails") or exchange.security_details
        exchange.mime_type = response.get("mimeType") or exchange.mime_type

    def _on_response_received(self, params: dict[str, Any]) -> None:
        exchange = self._current.get(params["requestId"])
        if exchange is not None:
            self._apply_response_info(exchange, params["response"])
        self._touch()

    def _on_data(self, params: dict[str, Any]) -> None:
        self._touch()
        network_id = params["requestId"]
        self._received[network_id] = self._received.get(network_id, 0) + int(
            params.get("dataLength") or 0
        )
        data = params.get("data")
        if not data:
            return
        chunk = base64.b64decode(data)
        if network_id in self._pending_data:
            self._pending_data[network_id].append(chunk)
            return
        self._write(network_id, chunk)

    def _write(self, network_id: str, chunk: bytes) -> None:
        sink = self._sinks.get(network_id)
        if sink is None:
            return
        if self.total_bytes + len(chunk) > self._size_limit:
            keep = max(0, self._size_limit - self.total_bytes)
            sink.write(chunk[:keep])
            self.total_bytes += keep
            self._limit_reached(network_id)
            return
        sink.write(chunk)
        self.total_bytes += len(chunk)

    def _limit_reached(self, network_id: str) -> None:
        self.size_limit_reached = True
        exchange = self._current.get(network_id)
        if exchange is not None:
            exchange.truncated = "length"
        self._finish_sink(network_id)
        self._stop_loading()

    def _stop_loading(self) -> None:
        """Stop the page loading anything more (the size limit is reached): an endless
        body must not keep growing the browser once the recorder has stopped keeping it."""
        if self._loading_stopped or self._closed:
            return
        self._loading_stopped = True
        self._spawn(self._send_quietly("Page.stopLoading", {}))

    async def _send_quietly(self, method: str, params: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self._cdp.send(method, params)

    def _finish_sink(self, network_id: str) -> None:
        sink = self._sinks.pop(network_id, None)
        exchange = self._current.get(network_id)
        if sink is None or exchange is None:
            return
        self._close_sink(sink, exchange)
        self._check_received(network_id, exchange)

    def _check_received(self, network_id: str, exchange: Exchange) -> None:
        """A body with fewer bytes kept than the browser received is cut, and says so."""
        received = self._received.get(network_id, 0)
        if exchange.truncated is None and exchange.body_size < received:
            exchange.truncated = "unspecified"
            exchange.complete = False
            exchange.failure = (
                f"{received - exchange.body_size} of {received} bytes the browser received "
                "were not recorded"
            )

    def _close_sink(self, sink: BodySink, exchange: Exchange) -> None:
        """Close the body file; a disk that refused bytes makes the body cut, and an error."""
        exchange.body_sha256 = sink.close()
        exchange.body_size = sink.size
        if sink.error is not None:
            exchange.truncated = exchange.truncated or "unspecified"
            exchange.failure = f"the body could not be written to disk: {sink.error.strerror}"
            self.errors.append(f"{exchange.url}: {exchange.failure}")

    def _on_finished(self, params: dict[str, Any]) -> None:
        network_id = params["requestId"]
        self._inflight.discard(network_id)
        self._touch(changed=True)
        exchange = self._current.get(network_id)
        if exchange is not None and exchange.truncated is None:
            exchange.complete = True
        if network_id in self._pending_data:
            # The stream answer has not been handled yet; it will finish the sink.
            self._request_info.setdefault(network_id, {})["finished"] = True
            return
        self._finish_sink(network_id)

    def _on_failed(self, params: dict[str, Any]) -> None:
        network_id = params["requestId"]
        self._inflight.discard(network_id)
        self._touch(changed=True)
        exchange = self._current.get(network_id)
        error_text = str(params.get("errorText") or "failed")
        if exchange is not None and not exchange.complete:
            exchange.failure = error_text
            exchange.canceled = bool(params.get("canceled"))
            if exchange.body_path is not None and exchange.truncated is None:
                if self._whole_by_length(network_id, exchange, error_text):
                    # Chromium "fails" an error status with an empty body to show its
                    # own page, after the whole (empty) body arrived.
                    exchange.complete = True
                else:
                    exchange.truncated = "disconnect"
        if network_id in self._pending_data:
            # The stream answer (with the bytes that came before it) is still on its way:
            # its handler writes them, then finishes the body.
            self._request_info.setdefault(network_id, {})["finished"] = True
            return
        self._finish_sink(network_id)

    def read_whole(self, network_id: str) -> bool:
        """Whether the body of ``network_id`` was read whole while its response was paused
        (every byte in hand before the browser saw any), rather than streamed."""
        return bool(self._request_info.get(network_id, {}).get("read_whole"))

    def _whole_by_length(self, network_id: str, exchange: Exchange, error_text: str) -> bool:
        """Every byte the server sent has arrived: read whole while paused, as many as it
        declared (Content-Length, no encoding), or none at all for an error status
        Chromium replaced by its own page (a chunked or HTTP/2 answer declares no length)."""
        if self.read_whole(network_id):
            return True
        received = self._received.get(network_id, 0)
        if "ERR_HTTP_RESPONSE_CODE_FAILURE" in error_text and received == 0:
            return True
        headers = {k.lower(): v.strip() for k, v in exchange.response_headers}
        declared = headers.get("content-length", "")
        return (
            declared.isdigit() and "content-encoding" not in headers and received == int(declared)
        )

    def _on_paused(self, params: dict[str, Any]) -> None:
        if self._closed:
            return
        self._spawn(self._handle_paused(params))

    async def _handle_paused(self, params: dict[str, Any]) -> None:
        request_id = params["requestId"]
        try:
            if (
                params.get("responseStatusCode") is None
                and params.get("responseErrorReason") is None
            ):
                await self._request_stage(params)
            elif params.get("responseErrorReason") is not None:
                await self._cdp.send("Fetch.continueRequest", {"requestId": request_id})
            else:
                await self._response_stage(params)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the page closing mid-call is normal at the end
            if "Invalid InterceptionId" in str(exc):
                # The browser dropped the request meanwhile (navigation, a superseded
                # favicon): nothing is waiting on it, and nothing of the page is missing.
                current = self._current.get(params.get("networkId") or request_id)
                if current is not None and not current.complete:
                    current.canceled = True
                return
            if not self._closed:
                self.errors.append(f"{params.get('request', {}).get('url', '?')}: {exc}")
                # Never leave the browser waiting on a request the recorder gave up on; but
                # one paused before the gate approved it is failed, never let out.
                if params.get("responseStatusCode") is None:
                    method, extra = "Fetch.failRequest", {"errorReason": "BlockedByClient"}
                else:
                    method, extra = "Fetch.continueResponse", {}
                with contextlib.suppress(Exception):
                    await self._cdp.send(method, {"requestId": request_id, **extra})

    async def _request_stage(self, params: dict[str, Any]) -> None:
        request_id = params["requestId"]
        url = params["request"]["url"]
        verdict: tuple[str, str] | None = None
        if self.size_limit_reached:
            verdict = ("size-limit", "size limit reached; no further requests")
        elif self._gate is not None:
            try:
                verdict = await self._gate(url)
            except Exception as exc:
                # Fail closed: a request the rules could not check never leaves the browser.
                verdict = ("access", f"the access rules could not check this request ({exc})")
        if verdict is not None:
            rule, reason = verdict
            # Written down redacted: a blocked URL's password must reach no record.
            self.blocked.append(
                BlockedRequest(url=redact_url(url), reason=reason, time=utc_now(), rule=rule)
            )
            await self._cdp.send(
                "Fetch.failRequest", {"requestId": request_id, "errorReason": "BlockedByClient"}
            )
            return
        await self._cdp.send("Fetch.continueRequest", {"requestId": request_id})

    async def _response_stage(self, params: dict[str, Any]) -> None:
        request_id = params["requestId"]
        network_id = params.get("networkId") or request_id
        request = params["request"]
        post = request.get("postData")
        exchange = Exchange(
            order=len(self.exchanges),
            network_id=network_id,
            url=request["url"],
            method=request.get("method", "GET"),
            resource_type=params.get("resourceType", "Other"),
            request_headers=dict(request.get("headers", {})),
            request_body=post.encode("utf-8") if isinstance(post, str) else None,
            request_time=self._request_info.get(network_id, {}).get("sent") or utc_now(),
            status=int(params["responseStatusCode"]),
            status_text=params.get("responseStatusText", "") or "",
            response_headers=[(h["name"], h["value"]) for h in params.get("responseHeaders", [])],
            response_time=utc_now(),
            frame_id=params.get("frameId"),
            browser_initiated=network_id in self._browser_initiated,
        )
        self.exchanges.append(exchange)
        previous = self._current.get(network_id)
        if previous is not None and previous.is_redirect:
            previous.complete = True
        self._current[network_id] = exchange
        self._touch()

        if exchange.is_redirect or exchange.method == "HEAD" or exchange.status in (204, 304):
            exchange.complete = exchange.is_redirect or exchange.complete
            await self._cdp.send("Fetch.continueResponse", {"requestId": request_id})
            return

        body_path = self._body_dir / f"{exchange.order:06d}.body"
        exchange.body_path = body_path
        self._received[network_id] = 0
        if exchange.resource_type in _DOCUMENT_TYPES:
            withhold = exchange.withhold_reason()
            if withhold is not None:
                await self._stream_withheld(request_id, network_id, exchange, withhold)
                return
            if self._streams(exchange):
                await self._stream_document(request_id, network_id, exchange)
            else:
                await self._read_whole(request_id, network_id, exchange, None)
                await self._cdp.send("Fetch.continueResponse", {"requestId": request_id})
            return

        sink = BodySink(body_path)
        self._sinks[network_id] = sink
        self._pending_data[network_id] = []
        try:
            answer = await self._cdp.send(
                "Network.streamResourceContent", {"requestId": network_id}
            )
            buffered = answer.get("bufferedData") if isinstance(answer, dict) else None
            if buffered:
                self._write(network_id, base64.b64decode(buffered))
        except Exception as exc:
            # Chromium cannot stream some browser-initiated loads (the favicon, for
            # one); read those whole while still paused, as for documents.
            self._pending_data.pop(network_id, None)
            self._sinks.pop(network_id, None)
            sink.close()
            await self._read_whole(request_id, network_id, exchange, f"{exc}")
            await self._cdp.send("Fetch.continueResponse", {"requestId": request_id})
            return
        for chunk in self._pending_data.pop(network_id, []):
            self._write(network_id, chunk)
        if self._request_info.get(network_id, {}).get("finished"):
            self._finish_sink(network_id)
        await self._cdp.send("Fetch.continueResponse", {"requestId": request_id})

    def _streams(self, exchange: Exchange) -> bool:
        """Whether a document is streamed, or read whole while paused.

        Only where the bytes the renderer gets are the server's is a document streamed:
        the page's own frame, a success status, a type Blink renders itself. Elsewhere
        Chromium may put its own page in their place (a PDF becomes its viewer's page, an
        error status with an empty body its error page, a frame forbidding framing is
        blocked), so the server's bytes are read while the response is paused.
        """
        main = self._main_frame is None or exchange.frame_id == self._main_frame
        return main and 200 <= exchange.status < 300 and exchange.rendered_by_the_page()

    async def _stream_document(self, request_id: str, network_id: str, exchange: Exchange) -> None:
        """Stream a document the browser renders: ask, let it go, take the answer."""
        assert exchange.body_path is not None
        sink = BodySink(exchange.body_path)
        self._sinks[network_id] = sink
        self._pending_data[network_id] = []
        stream = asyncio.ensure_future(
            self._cdp.send("Network.streamResourceContent", {"requestId": network_id})
        )
        await asyncio.sleep(0)  # the ask goes out first, while the response is paused
        try:
            await self._cdp.send("Fetch.continueResponse", {"requestId": request_id})
        except BaseException:
            stream.cancel()
            self._pending_data.pop(network_id, None)
            self._sinks.pop(network_id, None)
            self._close_sink(sink, exchange)
            raise  # handled as for any paused request (a dropped request is canceled)
        try:
            answer = await asyncio.wait_for(asyncio.shield(stream), _COMMIT_WAIT)
        except asyncio.CancelledError:
            stream.cancel()
            raise
        except Exception as exc:
            stream.cancel()
            # Finished before the browser committed it (a small page, an error page),
            # or never committed: the body is in Network's buffer once it has finished.
            await self._read_buffered(network_id, exchange, sink, _first_line(exc))
            return
        buffered = answer.get("bufferedData") if isinstance(answer, dict) else None
        if buffered:
            self._write(network_id, base64.b64decode(buffered))
        for chunk in self._pending_data.pop(network_id, []):
            self._write(network_id, chunk)
        if self._request_info.get(network_id, {}).get("finished"):
            self._finish_sink(network_id)

    async def _read_buffered(
        self, network_id: str, exchange: Exchange, sink: BodySink, why: str
    ) -> None:
        """A finished document whose stream could not be had: its body from the buffer."""
        # Until the wait is over, the pending entry keeps _on_finished from closing the
        # (still empty) sink: this read fills it.
        if not self._request_info.get(network_id, {}).get("finished"):
            deadline = time.monotonic() + _COMMIT_WAIT
            while network_id in self._inflight and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        self._pending_data.pop(network_id, None)
        try:
            answer = await asyncio.wait_for(
                self._cdp.send("Network.getResponseBody", {"requestId": network_id}),
                _WHOLE_BODY_TIMEOUT,
            )
        except Exception as exc:
            self._sinks.pop(network_id, None)
            if exchange.truncated is None and not (
                exchange.complete and self._received.get(network_id, 0) == 0
            ):
                exchange.truncated = "unspecified"
                exchange.complete = False
                exchange.failure = f"the document could not be read: {why}; {_first_line(exc)}"
            self._close_sink(sink, exchange)
            return
        body = answer.get("body", "")
        data = base64.b64decode(body) if answer.get("base64Encoded") else body.encode("utf-8")
        self._write(network_id, data)
        self._finish_sink(network_id)

    async def _stream_withheld(
        self, request_id: str, network_id: str, exchange: Exchange, why: str
    ) -> None:
        """Stream a document's body to disk in chunks, then stop the browser loading it.

        Reading a navigation whole (the only other way) would hold it in memory; a direct
        link to a video must not. The browser then shows an error page instead of a
        player, which the capture reports.
        """
        assert exchange.body_path is not None
        sink = BodySink(exchange.body_path)
        exchange.withheld = why
        try:
            answer = await self._cdp.send(
                "Fetch.takeResponseBodyAsStream", {"requestId": request_id}
            )
            handle = answer["stream"]
            try:
                while True:
                    chunk = await self._cdp.send("IO.read", {"handle": handle, "size": _IO_CHUNK})
                    data = chunk.get("data", "")
                    raw = base64.b64decode(data) if chunk.get("base64Encoded") else data.encode()
                    if self.total_bytes + len(raw) > self._size_limit:
                        raw = raw[: max(0, self._size_limit - self.total_bytes)]
                        exchange.truncated = "length"
                        self.size_limit_reached = True
                        self._stop_loading()
                    sink.write(raw)
                    self.total_bytes += len(raw)
                    if chunk.get("eof") or exchange.truncated:
                        break
            finally:
                with contextlib.suppress(Exception):
                    await self._cdp.send("IO.close", {"handle": handle})
            if exchange.truncated is None:
                exchange.complete = True
        except asyncio.CancelledError:
            exchange.truncated = exchange.truncated or "time"
            raise
        except Exception as exc:
            exchange.truncated = exchange.truncated or "unspecified"
            exchange.failure = f"document body could not be streamed: {exc}"
        finally:
            self._close_sink(sink, exchange)
            self._inflight.discard(network_id)
        with contextlib.suppress(Exception):
            await self._cdp.send(
                "Fetch.failRequest", {"requestId": request_id, "errorReason": "Aborted"}
            )

    async def _read_whole(
        self, request_id: str, network_id: str, exchange: Exchange, why: str | None
    ) -> None:
        """Read a paused response's whole body in one answer (documents, fallbacks)."""
        assert exchange.body_path is not None
        sink = BodySink(exchange.body_path)
        try:
            answer = await asyncio.wait_for(
                self._cdp.send("Fetch.getResponseBody", {"requestId": request_id}),
                _WHOLE_BODY_TIMEOUT,
            )
            body = answer.get("body", "")
            data = base64.b64decode(body) if answer.get("base64Encoded") else body.encode("utf-8")
            if self.total_bytes + len(data) > self._size_limit:
                data = data[: max(0, self._size_limit - self.total_bytes)]
                exchange.truncated = "length"
                self.size_limit_reached = True
                self._stop_loading()
            sink.write(data)
            self.total_bytes += len(data)
            if exchange.truncated is None:
                # Read while paused, so every byte is in: a load the browser then fails
                # (a frame that forbids framing) still has its whole body.
                self._request_info.setdefault(network_id, {})["read_whole"] = True
            if why is not None and exchange.truncated is None:
                # The whole body is in hand; Chromium may never report this load finished.
                exchange.complete = True
                self._inflight.discard(network_id)
        except (TimeoutError, asyncio.CancelledError) as exc:
            exchange.truncated = "time"
            exchange.failure = "the body did not arrive in time"
            if isinstance(exc, asyncio.CancelledError):
                raise
        except Exception as exc:
            exchange.truncated = "unspecified"
            exchange.failure = f"body unavailable: {why or ''} {exc}".strip()
            # "Invalid InterceptionId": the browser dropped the request meanwhile.
            exchange.canceled = "InterceptionId" in str(exc)
            self._inflight.discard(network_id)
        finally:
            self._close_sink(sink, exchange)
