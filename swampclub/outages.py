"""Quiet outages: one log line when a dependency goes away, one when it returns.

A dependency the web process may lose without failing requests (the cache behind the rate
limiter, the broker behind the wake-ups) used to log a warning with a chained traceback on
every request that met the outage: ~11,000 lines for a 20 s Redis outage at 10 requests/s.
Each such dependency now has one ``Dependency`` per process: the first failure logs one
line naming the error, later failures are only counted, and the first success after them
logs one line with the outage's length and the number of requests it affected. The state
is per process: each gunicorn worker logs its own pair.
"""

import logging
import threading
import time

_all: list["Dependency"] = []


class Dependency:
    """The up/down state of one external dependency in this process, logged on changes."""

    def __init__(
        self, name: str, logger: logging.Logger, *, consequence: str, unit: str = "request"
    ) -> None:
        self.name = name
        self.logger = logger
        # What one counted failure is ("request", "wake-up"), for the "back" line.
        self.unit = unit
        # What an outage means for the work, e.g. "requests are not rate limited".
        self.consequence = consequence
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._affected = 0
        _all.append(self)

    @property
    def is_down(self) -> bool:
        """True between a failure and the next success."""
        return self._down_since is not None

    def failed(self, exc: BaseException, *, what: str = "") -> None:
        """Record one request (or other unit) that failed because the dependency is away.

        Logs one warning (no traceback: the exception's type and text say enough, and a
        traceback per request is the noise this class exists to remove) on the first failure
        of an outage; later failures only count.
        """
        with self._lock:
            first = self._down_since is None
            if first:
                self._down_since = time.monotonic()
                self._affected = 0
            self._affected += 1
        if first:
            self.logger.warning(
                "%s unavailable%s (%s: %s); %s until it returns",
                self.name,
                f"; {what}" if what else "",
                type(exc).__name__,
                str(exc).strip() or "no detail",
                self.consequence,
            )

    def succeeded(self) -> None:
        """Record a success; logs one line if it ends an outage."""
        if self._down_since is None:  # the common case: no lock, no log
            return
        with self._lock:
            if self._down_since is None:
                return
            lasted = time.monotonic() - self._down_since
            affected = self._affected
            self._down_since = None
            self._affected = 0
        self.logger.warning(
            "%s is back after %.1f s; %d %s%s affected",
            self.name,
            lasted,
            affected,
            self.unit,
            "" if affected == 1 else "s",
        )

    def reset(self) -> None:
        """Forget any outage in progress without logging (for tests)."""
        with self._lock:
            self._down_since = None
            self._affected = 0


def dependencies_reset() -> None:
    """Forget every dependency's outage in progress, without logging (for tests)."""
    for dependency in _all:
        dependency.reset()
