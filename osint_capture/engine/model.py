"""What a capture runs with and what it produces: options, step records, the result.

Frozen where the value is settled before the capture starts (options, each step's
record); :class:`EngineResult` is filled in as the steps run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain_of_custody.errors import UsageError
from chain_of_custody.timeutil import utc_now
from osint_capture.engine.exchange import BlockedRequest, Exchange

__all__ = [
    "DEFAULT_SIZE_LIMIT",
    "DEFAULT_TIME_LIMIT",
    "BrowserContextRecord",
    "CaptureOptions",
    "Clock",
    "EngineResult",
    "StepLog",
    "StepRecord",
]

DEFAULT_TIME_LIMIT = 60.0
DEFAULT_SIZE_LIMIT = 200 * 1024 * 1024


@dataclass(frozen=True)
class CaptureOptions:
    """Every option a capture runs with; all of it is recorded in the manifest."""

    time_limit: float = DEFAULT_TIME_LIMIT
    size_limit: int = DEFAULT_SIZE_LIMIT
    allow_private_network: bool = False
    respect_robots: bool = False
    viewport_width: int = 1280
    viewport_height: int = 800
    settle_timeout: float = 10.0
    quiet_period: float = 0.5
    # Sooner than the quiet period: no request open and the page's DOM unchanged for this.
    still_period: float = 0.2
    max_scroll_rounds: int = 30

    def __post_init__(self) -> None:
        if not 5 <= self.time_limit <= 3600:
            raise UsageError("--time-limit must be between 5 and 3600 seconds")
        if self.size_limit < 1024 * 1024:
            raise UsageError("--size-limit must be at least 1 MiB")
        if not (200 <= self.viewport_width <= 4096 and 200 <= self.viewport_height <= 4096):
            raise UsageError("--viewport must be between 200x200 and 4096x4096")
        if not 0.5 <= self.settle_timeout <= 600:
            raise UsageError("--settle-timeout must be between 0.5 and 600 seconds")

    def as_record(self) -> dict[str, Any]:
        # Integers only: the manifest is canonical JSON, which has no floats.
        return {
            "time_limit_ms": round(self.time_limit * 1000),
            "size_limit_bytes": self.size_limit,
            "allow_private_network": self.allow_private_network,
            "respect_robots": self.respect_robots,
            "viewport": f"{self.viewport_width}x{self.viewport_height}",
            "settle_timeout_ms": round(self.settle_timeout * 1000),
            "quiet_period_ms": round(self.quiet_period * 1000),
            "still_period_ms": round(self.still_period * 1000),
            "max_scroll_rounds": self.max_scroll_rounds,
        }


@dataclass(frozen=True)
class StepRecord:
    """One named step of a capture, as the manifest's ``provenance.steps`` lists it."""

    name: str
    state: str  # done, partial, failed, skipped
    started: str
    ended: str
    detail: str = ""


@dataclass(frozen=True)
class BrowserContextRecord:
    """How the page's browser context was made: always fresh, never shared."""

    launch_number: int  # the how-many-th capture on this browser launch (1 = first)

    def as_record(self) -> dict[str, Any]:
        return {
            "fresh": True,
            "shared_with_other_captures": False,
            "captures_before_on_this_browser": self.launch_number - 1,
            "isolation": "a new browser context: no cookies, storage, cache or service "
            "workers of any other capture",
        }


@dataclass
class EngineResult:
    """Everything one capture found; filled in step by step."""

    requested_url: str
    started: str
    ended: str = ""
    final_url: str = ""
    http_status: int = 0
    title: str = ""
    user_agent: str = ""
    browser_version: str = ""
    exchanges: list[Exchange] = field(default_factory=list)
    blocked: list[BlockedRequest] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    partial_reasons: list[str] = field(default_factory=list)
    renderings: dict[str, Path] = field(default_factory=dict)
    page_metadata: dict[str, Any] = field(default_factory=dict)
    tls: dict[str, Any] | None = None
    redirect_chain: list[dict[str, Any]] = field(default_factory=list)
    robots: dict[str, Any] = field(default_factory=dict)
    popups: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    main_exchange: Exchange | None = None
    recorder_errors: list[str] = field(default_factory=list)
    total_bytes: int = 0
    context: BrowserContextRecord | None = None
    # The server answered an error status with an empty body, and the browser showed
    # its own error page for it (what the renderings then show).
    browser_error_page: bool = False
    # Why the browser or the page's renderer went away mid-capture, if it did.
    crash: str | None = None
    # Every top-level document the page showed, in order: the one it was sent to, then
    # each it moved itself to (script, meta refresh); the renderings show the last.
    navigations: list[dict[str, Any]] = field(default_factory=list)


class Clock:
    """The capture's time limit, and the earlier limit for loading."""

    def __init__(self, limit: float) -> None:
        self.start = time.monotonic()
        self.deadline = self.start + limit
        # Loading stops early enough to leave time for screenshot, PDF and DOM.
        self.load_deadline = self.deadline - min(15.0, limit * 0.3)

    def left(self, load: bool = False) -> float:
        end = self.load_deadline if load else self.deadline
        return max(0.0, end - time.monotonic())


class StepLog:
    """Records each step; a failed or partial step makes the capture partial."""

    def __init__(self, result: EngineResult) -> None:
        self._result = result

    def record(
        self,
        name: str,
        state: str,
        started: str,
        detail: str = "",
        *,
        position: int | None = None,
        ended: str | None = None,
    ) -> None:
        """Record a step; one recorded after others that ran meanwhile gives its
        ``position`` in the list and when it ``ended``."""
        record = StepRecord(name, state, started, ended or utc_now(), detail)
        steps = self._result.steps
        if position is None:
            steps.append(record)
        else:
            steps.insert(min(position, len(steps)), record)
        if state in ("partial", "failed"):
            self._result.partial_reasons.append(f"{name}: {detail}")
