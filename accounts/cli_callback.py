"""The browser flow's parameters: only the CLI's own loopback callback is honoured.

The CLI listens on ``http://localhost:<port>/callback`` (or ``127.0.0.1``) and opens
``/login?cli_callback=…&state=…&device_code=…``. A token must never leave for any other
place, so the callback is matched exactly and rebuilt from its parts before use.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlencode

from django.http import QueryDict

CALLBACK_PATTERN = re.compile(r"http://(localhost|127\.0\.0\.1):([0-9]{1,5})/callback")
STATE_PATTERN = re.compile(r"[A-Za-z0-9._~-]{1,200}")
DEVICE_CODE_PATTERN = re.compile(r"[A-Za-z0-9-]{1,32}")


@dataclass(frozen=True)
class CliLogin:
    """Validated browser-flow parameters."""

    callback: str
    state: str
    device_code: str

    @property
    def origin(self) -> str:
        """The callback's origin (``http://localhost:<port>``), for the page's CSP."""
        return self.callback.removesuffix("/callback")

    def redirect_url(self, token: str) -> str:
        """The callback URL carrying ``token`` and ``state`` back to the CLI."""
        return f"{self.callback}?{urlencode({'token': token, 'state': self.state})}"

    def query(self) -> str:
        """These parameters as a query string, to carry them across the sign-in."""
        return urlencode(
            {"cli_callback": self.callback, "state": self.state, "device_code": self.device_code}
        )


class CliLoginRefused(ValueError):
    """The browser-flow parameters are missing or not acceptable; the message says which."""


def cli_login_parse(params: QueryDict) -> CliLogin | None:
    """The browser-flow parameters in ``params`` (a QueryDict), or None when there are none.

    Raises ``CliLoginRefused`` when ``cli_callback`` is anything but
    ``http://localhost|127.0.0.1:<port>/callback`` (no user info, query or fragment), or
    when ``state`` or ``device_code`` is missing or malformed.
    """
    callback = params.get("cli_callback")
    if callback is None:
        return None
    match = CALLBACK_PATTERN.fullmatch(callback)
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise CliLoginRefused(
            "The sign-in link names a callback address that is not the swamp CLI on this "
            "computer (only http://localhost:<port>/callback or "
            "http://127.0.0.1:<port>/callback is accepted)."
        )
    state = params.get("state", "")
    if not STATE_PATTERN.fullmatch(state):
        raise CliLoginRefused("The sign-in link has no valid state parameter.")
    device_code = params.get("device_code", "")
    if not DEVICE_CODE_PATTERN.fullmatch(device_code):
        raise CliLoginRefused("The sign-in link has no valid device code.")
    host, port = match.group(1), int(match.group(2))
    return CliLogin(callback=f"http://{host}:{port}/callback", state=state, device_code=device_code)
