"""The headers the network stack really sent and received, matched to the exchanges.

Chromium reports them in their own CDP events (``Network.requestWillBeSentExtraInfo``,
``Network.responseReceivedExtraInfo``), one per redirect hop, possibly after the
response; the paused request and response the recorder sees lack some of them (the
request's cookies and the network stack's own headers, a response's ``Set-Cookie``).
They are kept per network id and hop, and given to the exchanges at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from osint_capture.engine.exchange import Exchange

__all__ = ["NetworkHeaders"]


class NetworkHeaders:
    """One handler per CDP event; :meth:`apply` matches them to the exchanges."""

    def __init__(self) -> None:
        # Per network id, one entry per redirect hop in order.
        self._sent: dict[str, list[dict[str, str]]] = {}
        self._received: dict[str, list[tuple[int, dict[str, str]]]] = {}

    def on_request_extra_info(self, params: dict[str, Any]) -> None:
        headers = params.get("headers")
        if isinstance(headers, dict):
            self._sent.setdefault(params["requestId"], []).append(
                {str(k): str(v) for k, v in headers.items()}
            )

    def on_response_extra_info(self, params: dict[str, Any]) -> None:
        headers = params.get("headers")
        if isinstance(headers, dict):
            status = params.get("statusCode")
            self._received.setdefault(params["requestId"], []).append(
                (
                    int(status) if isinstance(status, int) else 0,
                    {str(k): str(v) for k, v in headers.items()},
                )
            )

    def apply(self, exchanges: Iterable[Exchange]) -> None:
        """Give each exchange the headers really sent, and the received ones it lacks.

        HTTP/2 pseudo-headers become the ``Host`` of the WARC request record. Response
        headers the paused response did not show are added only where the hop's status
        agrees, so a hop is never given another hop's headers.
        """
        hops: dict[str, int] = {}
        for exchange in exchanges:
            index = hops.get(exchange.network_id, 0)
            hops[exchange.network_id] = index + 1
            self._add_received(exchange, index)
            sent = self._sent.get(exchange.network_id, [])
            if index >= len(sent):
                continue
            headers = {k: v for k, v in sent[index].items() if not k.startswith(":")}
            authority = sent[index].get(":authority")
            if authority and not any(k.lower() == "host" for k in headers):
                headers = {"Host": authority, **headers}
            exchange.request_headers = headers
            exchange.request_headers_source = "network"

    def _add_received(self, exchange: Exchange, hop: int) -> None:
        received = self._received.get(exchange.network_id, [])
        if hop >= len(received) or received[hop][0] != exchange.status:
            return
        shown = {name.lower() for name, _ in exchange.response_headers}
        for name, value in received[hop][1].items():
            if name.lower() in shown:
                continue
            # Repeated headers (several Set-Cookie) arrive joined by newlines.
            exchange.response_headers.extend((name, part) for part in value.split("\n"))
