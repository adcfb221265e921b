"""The HTTP POSTs of deliveries: checked address, pinned keep-alive connections, short timeouts.

The host is resolved and checked (``webhooks.urlsafety``) right before each batch of
attempts, and the connections go to the checked address itself (the URL's host is kept for
the ``Host`` header, TLS SNI and certificate checks), so DNS cannot point a request
elsewhere between check and connect. A pooled connection is only ever reused for the same
checked address (the pool is keyed by it), so keep-alive does not weaken the check.
Redirects are never followed; the timeout covers connecting and each read
(``WEBHOOK_TIMEOUT_S``, 5 s).

``EndpointClient`` keeps the connections of one endpoint URL in each worker process
(``urllib3`` pools, one per checked address, of up to ``WEBHOOK_ENDPOINT_CONCURRENCY``
keep-alive connections), shared by the threads sending that endpoint's batch. Idle
clients are closed after ``IDLE_S``.
"""

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.util import Timeout

from webhooks.urlsafety import url_resolve

EXCERPT_BYTES = 500
DRAIN_BYTES = 64 * 1024  # a longer answer is not read: its connection is dropped instead
USER_AGENT = "swampclub-webhooks/1"
IDLE_S = 30.0


@dataclass(frozen=True)
class SendResult:
    """What one POST got: the status (None when no answer), latency, excerpt, error, and
    the ``Retry-After`` header if any."""

    status: int | None
    latency_ms: int
    excerpt: str = ""
    error: str = ""
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Target:
    """Where the requests of one batch go: the checked address and port (the URL's host
    still drives the ``Host`` header, TLS SNI and the certificate check)."""

    ip: str
    port: int


class EndpointClient:
    """Keep-alive connections to one endpoint URL, shared by the threads sending to it.

    One ``urllib3`` connection pool per checked address (of up to ``pool_size``
    connections): a connection is only ever reused for the address it was opened to.
    No proxies from the environment, no cookies, no retries, no redirects.
    """

    def __init__(self, url: str, *, pool_size: int) -> None:
        self.url = url
        self.last_used = time.monotonic()
        split = urlsplit(url)
        self._https = split.scheme.lower() == "https"
        self._hostname = split.hostname or ""
        self._host_header = split.netloc  # as written in the URL (credentials are refused)
        self._path = (split.path or "/") + (f"?{split.query}" if split.query else "")
        self._pool_size = pool_size
        self._pools: dict[Target, urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def resolve(self) -> Target:
        """Check the URL and resolve its host now; ``UnsafeUrl`` when it may not be sent to."""
        _, _, port, addresses = url_resolve(self.url)
        return Target(str(addresses[0]), port)

    def _pool(self, target: Target) -> urllib3.HTTPConnectionPool:
        with self._lock:
            pool = self._pools.get(target)
            if pool is None:
                options: dict = {"maxsize": self._pool_size, "block": False, "retries": False}
                if self._https:
                    pool = urllib3.HTTPSConnectionPool(
                        target.ip,
                        target.port,
                        server_hostname=self._hostname,
                        assert_hostname=self._hostname,
                        cert_reqs="CERT_REQUIRED",
                        ca_certs=certifi.where(),
                        **options,
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(target.ip, target.port, **options)
                self._pools[target] = pool
            return pool

    def post(self, target: Target, *, body: bytes, headers: dict[str, str]) -> SendResult:
        """POST ``body`` to the checked ``target``; never raises for network trouble."""
        self.last_used = time.monotonic()
        started = time.monotonic()
        timeout = settings.WEBHOOK_TIMEOUT_S

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            response = self._pool(target).urlopen(
                "POST",
                self._path,
                body=body,
                headers={
                    **headers,
                    "Host": self._host_header,
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=Timeout(connect=timeout, read=timeout),
                preload_content=False,
            )
            try:
                raw = response.read(EXCERPT_BYTES, decode_content=True) or b""
                _drain(response)
                return SendResult(
                    status=response.status,
                    latency_ms=elapsed(),
                    excerpt=raw.decode("utf-8", "replace"),
                    retry_after=response.headers.get("Retry-After"),
                )
            finally:
                response.release_conn()
        except urllib3.exceptions.TimeoutError:
            return SendResult(status=None, latency_ms=elapsed(), error="timed out")
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return SendResult(status=None, latency_ms=elapsed(), error=str(exc)[:300])

    def close(self) -> None:
        """Close the pooled connections."""
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def _drain(response: urllib3.BaseHTTPResponse) -> None:
    """Read the rest of a short answer so its connection can be reused; a long one is not
    read: its connection is closed instead."""
    read = 0
    while chunk := response.read(16 * 1024, decode_content=True):
        read += len(chunk)
        if read > DRAIN_BYTES:
            response.close()
            return


_clients: dict[tuple[int, str], EndpointClient] = {}
_clients_lock = threading.Lock()


def client_for(endpoint_id: int, url: str) -> EndpointClient:
    """This process's client for an endpoint's current URL (created on first use); clients
    idle for ``IDLE_S`` are closed on the way."""
    now = time.monotonic()
    with _clients_lock:
        for key, client in list(_clients.items()):
            if now - client.last_used > IDLE_S or (key[0] == endpoint_id and key[1] != url):
                client.close()
                del _clients[key]
        current = _clients.get((endpoint_id, url))
        if current is None:
            pool_size = max(1, settings.WEBHOOK_ENDPOINT_CONCURRENCY)
            current = _clients[(endpoint_id, url)] = EndpointClient(url, pool_size=pool_size)
        current.last_used = now
        return current
