"""Browser-test fixtures: Debian's Chromium driven by Playwright against ``live_server``.

Use ``browser_page`` (a Playwright ``Page`` whose relative URLs go to the live server),
``browser_errors`` (console errors and uncaught exceptions seen by that page, which is how
Content-Security-Policy violations show up; any left at the end fails the test) and
``login(page, user)`` (signs the page in
as ``user`` through a real session cookie). Tests using them need
``pytest.mark.django_db(transaction=True)``: the server thread must see committed rows.
They are skipped, with the reason, only when Chromium is not installed.
"""

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Console "errors" that are part of normal operation, not faults:
# - Chromium logs every 4xx response, and a form with invalid input answers 422 by design;
# - htmx logs a request it aborted itself ("htmx:sendAbort", with "htmx:afterRequest"),
#   which ``hx-sync="this:replace"`` does whenever a newer check supersedes a running one.
# Everything else (CSP violations, uncaught exceptions, htmx swap/target errors, any other
# 4xx or 5xx, a missing favicon) is collected and fails the test at teardown.
EXPECTED_CONSOLE_ERRORS = (
    "Failed to load resource: the server responded with a status of 422",
    "htmx:sendAbort",
    "htmx:afterRequest",
)
# The README's screenshots are refreshed only on request (SAVE_SCREENSHOTS=1), so a test run
# leaves the working tree clean; otherwise they go to a scratch folder.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("SAVE_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "swampclub-screenshots"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test."""
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.browser)


@dataclass
class BrowserSession:
    """One Chromium page and what it reported."""

    page: object
    base_url: str
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def browser_session(live_server, monkeypatch, settings) -> Iterator[BrowserSession]:
    """A fresh Chromium (headless) with one page pointed at the live server."""
    if not CHROMIUM.exists():
        pytest.skip(f"needs Chromium at {CHROMIUM} (Debian package 'chromium')")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an asyncio event loop in this thread while the test runs;
    # Django refuses ORM calls when a loop is running unless told the caller is synchronous
    # code. Scoped to the test by monkeypatch, so other tests keep Django's guard.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # Factories hash passwords; the fast hasher keeps browser tests quick.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        # Generous: a waiting step passes as soon as its condition holds; the limit only
        # matters on a machine too loaded to answer in time.
        context.set_default_timeout(30_000)
        page = context.new_page()
        session = BrowserSession(page=page, base_url=live_server.url)

        def on_console(message) -> None:
            if message.type == "error" and not message.text.startswith(EXPECTED_CONSOLE_ERRORS):
                session.errors.append(f"{message.text} ({message.location.get('url', '')})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: session.errors.append(str(error)))
        page.swamp_base_url = live_server.url  # for login()
        try:
            yield session
            # Every browser test fails on a console error or uncaught exception it did not
            # expect (CSP violations are console errors), whether or not it looked itself.
            # A test that provokes one on purpose asserts it and removes it from the list.
            assert session.errors == [], "console errors or uncaught exceptions in the page"
        finally:
            context.close()
            browser.close()
            # While Playwright's loop runs, Django keeps database connections per context
            # rather than per thread, so ORM calls in the test body opened a connection of
            # their own; close it here, or dropping the test database finds it still open.
            connections.close_all()


@pytest.fixture
def browser_page(browser_session: BrowserSession):
    """The Playwright page; ``page.goto("/staff/")`` opens the live server's page."""
    return browser_session.page


@pytest.fixture
def browser_errors(browser_session: BrowserSession) -> list[str]:
    """Console errors and uncaught exceptions of ``browser_page`` (CSP violations included)."""
    return browser_session.errors


def login(page, user) -> None:
    """Sign ``page`` in as ``user`` with a real session (no login form round trip)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": cookie.value, "url": page.swamp_base_url}]
    )


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as ``docs/screenshots/<name>.png``; return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    # caret="initial": Playwright's default (caret="hide") hides the text caret by injecting
    # a <style> element, which the CSP blocks — one "Applying inline style violates ...
    # 'style-src 'self''" console error per screenshot. The tooling's, not the site's.
    page.screenshot(path=str(path), full_page=True, caret="initial")
    return path
