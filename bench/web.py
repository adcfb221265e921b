"""A small HTTP client for the page and form measurements: cookies, CSRF, timing.

``http.client`` with one connection that reopens itself when the server closes it (gunicorn's
sync workers close after every response), so the timing covers what a browser would wait
for: connect, request, response.
"""

import html
import http.client
import re
import socket
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urljoin

CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken"\s+value="([^"]+)"')
# A "next page" link: <a rel="next" href="...">, an <a> whose text says Next/Older/More, or
# an htmx "load more" element (hx-get).
NEXT_LINKS = (
    re.compile(rb'<(?:a|link)\b[^>]*\brel="next"[^>]*\bhref="([^"]+)"', re.I),
    re.compile(rb'<(?:a|link)\b[^>]*\bhref="([^"]+)"[^>]*\brel="next"', re.I),
    re.compile(rb'<a\b[^>]*\bhref="([^"]+)"[^>]*>\s*(?:next|older|more)\b', re.I),
    re.compile(rb'\bhx-get="([^"]+)"[^>]*>\s*(?:next|older|load more|more)\b', re.I),
)


class Connection(http.client.HTTPConnection):
    """An HTTP connection with Nagle's algorithm off, as browsers and Deno's fetch use.

    ``http.client`` sends a request's headers and body in two writes; with Nagle on, the
    body waits for the server to acknowledge the headers, and Linux delays that ACK by up
    to 40 ms, which would be measured as server latency on every POST.
    """

    def connect(self) -> None:
        """Connect, then disable Nagle."""
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def percentile(values: list[float], pct: float) -> float | None:
    """The ``pct`` percentile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil without floats
    return ordered[int(rank) - 1]


@dataclass
class Response:
    """A finished request: status, headers (lower-case names), body, milliseconds taken."""

    status: int
    headers: dict[str, str]
    body: bytes
    ms: float


class Session:
    """A cookie-keeping client for one origin (``127.0.0.1:<port>``)."""

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.host, self.port = host, port
        self.conn = Connection(host, port, timeout=timeout)
        self.cookies: dict[str, str] = {}

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request and read the whole response; cookies are kept."""
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # A closed keep-alive connection: reconnect once and retry.
            self.conn.close()
            started = time.perf_counter()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        ms = (time.perf_counter() - started) * 1000
        for raw in response.headers.get_all("Set-Cookie") or ():
            jar = SimpleCookie()
            jar.load(raw)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, data, ms)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        """GET ``path``."""
        return self.request("GET", path, headers=headers)

    def post_form(
        self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None
    ) -> Response:
        """POST url-encoded ``fields`` with the CSRF cookie's token header."""
        headers = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return self.request("POST", path, urlencode(fields).encode(), headers)

    def login(self, username: str, password: str) -> None:
        """Log in through the real login form; raises if it did not work."""
        page = self.get("/accounts/login/")
        token = csrf_token(page.body)
        if page.status != 200 or not token:
            raise RuntimeError(f"login page answered {page.status}")
        done = self.post_form(
            "/accounts/login/",
            {"username": username, "password": password, "csrfmiddlewaretoken": token},
        )
        if done.status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login failed: {done.status}")


def csrf_token(body: bytes) -> str | None:
    """The ``csrfmiddlewaretoken`` of the first form in ``body``."""
    match = CSRF_INPUT.search(body)
    return match.group(1).decode() if match else None


def next_link(body: bytes, base: str) -> str | None:
    """The "next page" URL of a listing page, resolved against ``base``; None on the last."""
    for pattern in NEXT_LINKS:
        match = pattern.search(body)
        if match:
            return urljoin(base, html.unescape(match.group(1).decode()))
    return None
