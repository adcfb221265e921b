"""The CLI's browser sign-in and a member's own keys, clicked through in Chromium.

The CLI's side of the browser flow is played by a real ``http.server`` on a loopback port,
as the swamp CLI runs one: it records the callback's query string.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from scoring.models import ApiKey
from tests.browser.conftest import login, screenshot
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

STATE = "0b7e5c8e-9a51-4d8e-b3a4-7f1d2c3b4a5e"
DEVICE_CODE = "WXYZ-9876"


class CallbackServer:
    """A one-route server standing in for the CLI: remembers each /callback query."""

    def __init__(self) -> None:
        received: list[dict[str, list[str]]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/callback":
                    received.append(parse_qs(url.query))
                body = b"<!doctype html><title>swamp</title><p>Signed in. Back to your terminal."
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.callback = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def cli_server() -> Iterator[CallbackServer]:
    server = CallbackServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


def _login_path(callback: str) -> str:
    query = urlencode({"cli_callback": callback, "state": STATE, "device_code": DEVICE_CODE})
    return f"/login?{query}"


def test_sign_in_confirm_and_the_cli_receives_token_and_state(
    browser_page, browser_errors, cli_server
):
    page = browser_page
    member = UserFactory(username="marsh", password="swamp-pass-123")
    page.goto(_login_path(cli_server.callback))
    assert DEVICE_CODE in page.inner_text("main")
    page.fill("#id_username", "marsh")
    page.fill("#id_password", "swamp-pass-123")
    page.click("button:has-text('Log in')")
    page.wait_for_selector("text=Check that your terminal shows")
    assert page.inner_text("[data-device-code]") == DEVICE_CODE
    screenshot(page, "cli-confirm")
    assert cli_server.received == []
    page.click("button:has-text('Connect the CLI')")
    page.wait_for_url(f"{cli_server.callback}?*")
    assert "Back to your terminal" in page.inner_text("body")
    assert len(cli_server.received) == 1
    query = cli_server.received[0]
    assert query["state"] == [STATE]
    token = query["token"][0]
    assert browser_errors == []
    # The CLI carries on with the token: its own key, named as it names it.
    created = Client().post(
        "/api/auth/api-key/create",
        json.dumps({"name": "cli-marsh-laptop-1732870000000"}),
        content_type="application/json",
        headers={"authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201
    assert ApiKey.objects.get().owner == member
    # ...which the member then finds on their keys page.
    page.goto("/settings/keys/")
    assert "cli-marsh-laptop-1732870000000" in page.inner_text("#key-list")


def test_a_foreign_callback_is_refused_and_nothing_is_sent(
    browser_page, browser_errors, cli_server
):
    page = browser_page
    member = UserFactory(username="marsh")
    login(page, member)
    foreign = "http://evil.example:8080/callback"
    response = page.goto(_login_path(foreign))
    assert response.status == 400
    assert "CLI sign-in refused" in page.inner_text("main")
    assert page.locator("button:has-text('Connect the CLI')").count() == 0
    assert cli_server.received == []
    # The refusal's 400 is the one console error, on purpose.
    assert [e for e in browser_errors if "status of 400" in e and "evil.example" in e]
    browser_errors[:] = [e for e in browser_errors if "status of 400" not in e]


def test_keys_page_create_shown_once_copy_and_revoke(browser_page, browser_errors):
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    member = UserFactory(username="marsh")
    login(page, member)
    page.goto("/settings/keys/")
    page.fill("#id_name", "work laptop")
    page.click("button:has-text('Create key')")
    secret = page.input_value("#new-key-value")
    assert secret.startswith("swamp_")
    copy = page.locator("button[data-copy]")
    assert copy.is_visible()
    copy.click()
    page.wait_for_selector("[data-copy-status]:has-text('Copied.')")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, "member-keys")
    whoami = Client().get("/api/whoami", headers={"x-api-key": secret})
    assert whoami.status_code == 200
    assert whoami.json()["username"] == "marsh"
    # Shown once: a fresh load of the page no longer has it.
    page.goto("/settings/keys/")
    assert page.locator("#new-key-value").count() == 0
    assert secret not in page.content()
    page.click("#key-list button:has-text('Revoke')")
    page.wait_for_selector("#key-list .badge-revoked")
    assert "revoked" in page.inner_text("main")
    assert Client().get("/api/whoami", headers={"x-api-key": secret}).status_code == 401
    assert browser_errors == []
