"""The HTTP POSTs of deliveries: checked address, pinned keep-alive connections, short timeouts.

The host is resolved and checked (``webhooks.urlsafety``) right before each batch of
attempts, and the connections go to the checked address itself (the URL's host is kept for
the ``Host`` header, TLS SNI and certificate checks), so DNS cannot point a request
elsewhere between check and connect. A pooled connection is only ever reused for the same
checked address (the pool is keyed by it), so keep-alive does not weaken the check.
Redirects are never followed; the timeout covers connecting and each read
(``WEBHOOK_TIMEOUT_S``, 5 s).

``EndpointClient`` keeps one ``requests`` session per endpoint URL in each worker process:
its connection pool holds up to ``WEBHOOK_ENDPOINT_CONCURRENCY`` keep-alive connections,
shared by the threads sending that endpoint's batch. Idle clients are closed after
``IDLE_S``.
"""

import threading
import time
from dataclasses import dataclass
from http.cookiejar import DefaultCookiePolicy

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from webhooks.urlsafety import UnsafeUrl, url_resolve

EXCERPT_BYTES = 500
DRAIN_BYTES = 64 * 1024  # a longer answer is not read: its connection is dropped instead
USER_AGENT = "swampclub-webhooks/1"
IDLE_S = 120.0


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
    """Where the requests of one batch go: the URL with the checked address as its host,
    and the ``Host`` header as written in the endpoint's URL."""

    url: str
    host_header: str


class _PinnedAdapter(HTTPAdapter):
    """Connects to the URL's (already checked) address while TLS still verifies the name."""

    def __init__(self, hostname: str, *, pool_size: int) -> None:
        self._hostname = hostname
        super().__init__(max_retries=0, pool_connections=4, pool_maxsize=pool_size)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self._hostname
            pool_kwargs["assert_hostname"] = self._hostname
        return host_params, pool_kwargs


class EndpointClient:
    """Keep-alive connections to one endpoint URL, shared by the threads sending to it."""

    def __init__(self, url: str, *, pool_size: int) -> None:
        self.url = url
        self.last_used = time.monotonic()
        self._split = requests.utils.urlparse(url)
        self._session = requests.Session()
        self._session.trust_env = False  # no proxies from the environment: address pinned
        self._session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # no cookies
        hostname = self._split.hostname or ""
        self._session.mount(
            f"{self._split.scheme}://", _PinnedAdapter(hostname, pool_size=pool_size)
        )

    def resolve(self) -> Target:
        """Check the URL and resolve its host now; ``UnsafeUrl`` when it may not be sent to."""
        _, _, port, addresses = url_resolve(self.url)
        ip = addresses[0]
        netloc = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
        # The Host header as written in the URL (credentials are refused by the check).
        return Target(self._split._replace(netloc=netloc).geturl(), self._split.netloc)

    def post(self, target: Target, *, body: bytes, headers: dict[str, str]) -> SendResult:
        """POST ``body`` to the checked ``target``; never raises for network trouble."""
        self.last_used = time.monotonic()
        started = time.monotonic()
        timeout = settings.WEBHOOK_TIMEOUT_S

        def elapsed() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            with self._session.post(
                target.url,
                data=body,
                headers={
                    **headers,
                    "Host": target.host_header,
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
                timeout=(timeout, timeout),
                allow_redirects=False,
                stream=True,
            ) as response:
                raw = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
                _drain(response)
                return SendResult(
                    status=response.status_code,
                    latency_ms=elapsed(),
                    excerpt=raw.decode("utf-8", "replace"),
                    retry_after=response.headers.get("Retry-After"),
                )
        except requests.Timeout:
            return SendResult(status=None, latency_ms=elapsed(), error="timed out")
        except requests.RequestException as exc:
            return SendResult(status=None, latency_ms=elapsed(), error=str(exc)[:300])

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()


def _drain(response: requests.Response) -> None:
    """Read the rest of a short answer so its connection can be reused; a long one is left
    unread and its connection is closed with the response."""
    read = 0
    for chunk in response.iter_content(16 * 1024):
        read += len(chunk)
        if read > DRAIN_BYTES:
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
        client = _clients.get((endpoint_id, url))
        if client is None:
            pool_size = max(1, settings.WEBHOOK_ENDPOINT_CONCURRENCY)
            client = _clients[(endpoint_id, url)] = EndpointClient(url, pool_size=pool_size)
        client.last_used = now
        return client


def post_json(*, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """One POST of ``body`` to ``url`` on a fresh connection (checked and pinned first)."""
    client = EndpointClient(url, pool_size=1)
    started = time.monotonic()
    try:
        try:
            target = client.resolve()
        except UnsafeUrl as exc:
            latency = int((time.monotonic() - started) * 1000)
            return SendResult(status=None, latency_ms=latency, error=str(exc.message))
        return client.post(target, body=body, headers=headers)
    finally:
        client.close()
