"""The HTTP POST of a delivery: checked address, pinned connection, short timeouts.

The host is resolved and checked (``webhooks.urlsafety``) right before the request, and
the connection goes to the checked address itself (the URL's host is kept for the
``Host`` header, TLS SNI and certificate checks), so DNS cannot point the request elsewhere
between check and connect. Redirects are never followed; the timeout covers connecting and
each read (``WEBHOOK_TIMEOUT_S``, 5 s).
"""

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

from webhooks.urlsafety import UnsafeUrl, url_resolve

EXCERPT_BYTES = 500
USER_AGENT = "swampclub-webhooks/1"


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


class _PinnedAdapter(HTTPAdapter):
    """Connects to the URL's (already checked) address while TLS still verifies the name."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[Any, Any]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params["scheme"] == "https":
            # urllib3 accepts both; its typed key dict does not list them.
            pool_kwargs["server_hostname"] = self._hostname  # type: ignore[typeddict-unknown-key]
            pool_kwargs["assert_hostname"] = self._hostname  # type: ignore[typeddict-unknown-key]
        return host_params, pool_kwargs


def post_json(*, url: str, body: bytes, headers: dict[str, str]) -> SendResult:
    """POST ``body`` to ``url`` with ``headers``; never raises for network trouble."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        scheme, host, port, addresses = url_resolve(url)
    except UnsafeUrl as exc:
        return SendResult(status=None, latency_ms=elapsed(), error=str(exc.message))
    ip = addresses[0]
    netloc = f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"
    split = urlparse(url)
    target = split._replace(netloc=netloc).geturl()
    host_header = split.netloc  # as written in the URL (credentials are refused)
    session = requests.Session()
    session.trust_env = False  # no proxies from the environment: the address is pinned
    session.mount(f"{scheme}://", _PinnedAdapter(host))
    timeout = settings.WEBHOOK_TIMEOUT_S
    try:
        with session.post(
            target,
            data=body,
            headers={
                **headers,
                "Host": host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=(timeout, timeout),
            allow_redirects=False,
            stream=True,
        ) as response:
            raw = response.raw.read(EXCERPT_BYTES, decode_content=True) or b""
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
    finally:
        session.close()
