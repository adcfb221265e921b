"""The CLI's browser flow: /login?cli_callback=…, the confirmation, the redirect home."""

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client

from accounts.models import CliSignInToken
from scoring.models import ApiKey

pytestmark = pytest.mark.django_db

CALLBACK = "http://localhost:53682/callback"
PARAMS = {"cli_callback": CALLBACK, "state": "5f0c8a52-1f0e-4d3c-9d1e-2b7f6f1c0e11"}
PARAMS["device_code"] = "ABCD-1234"


def _login_url(**overrides: str) -> str:
    return "/login?" + urlencode({**PARAMS, **overrides})


def _csrf(response) -> str:
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)[1].decode()


def test_a_visitor_signs_in_then_confirms_and_the_cli_gets_token_and_state(alice, alice_password):
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(_login_url())
    assert page.status_code == 200
    assert b'name="password"' in page.content
    assert b"ABCD-1234" in page.content
    signed_in = browser.post(
        _login_url(),
        {"username": "alice", "password": alice_password, "csrfmiddlewaretoken": _csrf(page)},
    )
    assert signed_in.status_code == 302
    assert signed_in["Location"] == _login_url()
    confirm = browser.get(signed_in["Location"])
    assert confirm.status_code == 200
    assert b"Check that your terminal shows" in confirm.content
    assert b"ABCD-1234" in confirm.content
    # The page's CSP lets its form lead to the CLI's callback, and nowhere else new.
    assert "form-action 'self' http://localhost:53682" in confirm["Content-Security-Policy"]
    assert not CliSignInToken.objects.exists()
    hidden = rb'<input type="hidden" name="(\w+)" value="([^"]*)"'
    fields = dict(re.findall(hidden, confirm.content))
    done = browser.post("/login/cli/confirm", {k.decode(): v.decode() for k, v in fields.items()})
    assert done.status_code == 302
    location = urlsplit(done["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == [PARAMS["state"]]
    token = query["token"][0]
    assert CliSignInToken.objects.get().via == "browser"
    # The CLI carries on at step 2 with that token.
    cli = Client()
    created = cli.post(
        "/api/auth/api-key/create",
        {"name": "cli-devbox-1732870000000"},
        content_type="application/json",
        headers={"authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201
    assert ApiKey.objects.get().owner == alice


def test_a_signed_in_member_goes_straight_to_the_confirmation(client, alice):
    client.force_login(alice)
    page = client.get(_login_url())
    assert page.status_code == 200
    assert b"Check that your terminal shows" in page.content
    assert b'name="password"' not in page.content


def test_the_confirmation_needs_a_csrf_token(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    response = browser.post("/login/cli/confirm", PARAMS)
    assert response.status_code == 403
    assert not CliSignInToken.objects.exists()


def test_the_confirmation_needs_a_signed_in_member(client):
    response = client.post("/login/cli/confirm", PARAMS)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert not CliSignInToken.objects.exists()


@pytest.mark.parametrize(
    "callback",
    [
        "https://localhost:53682/callback",
        "http://evil.example/callback",
        "http://localhost.evil.example:53682/callback",
        "http://localhost:53682@evil.example/callback",
        "http://user@localhost:53682/callback",
        "http://localhost/callback",
        "http://localhost:0/callback",
        "http://localhost:99999/callback",
        "http://127.0.0.2:53682/callback",
        "http://[::1]:53682/callback",
        "http://localhost:53682/other",
        "http://localhost:53682/callback?next=http://evil.example",
        "http://localhost:53682/callback#x",
        "//evil.example/callback",
        "",
    ],
)
def test_a_foreign_callback_is_refused_with_a_clear_page(client, alice, callback):
    for signed_in in (False, True):
        if signed_in:
            client.force_login(alice)
        page = client.get(_login_url(cli_callback=callback))
        assert page.status_code == 400
        assert b"CLI sign-in refused" in page.content
        assert b'name="password"' not in page.content
        if signed_in:
            confirm = client.post("/login/cli/confirm", {**PARAMS, "cli_callback": callback})
            assert confirm.status_code == 400
            assert b"CLI sign-in refused" in confirm.content
    assert not CliSignInToken.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("state", ""), ("state", "a b"), ("device_code", ""), ("device_code", "<x>")],
)
def test_missing_or_malformed_state_or_code_is_refused(client, alice, field, value):
    client.force_login(alice)
    assert client.get(_login_url(**{field: value})).status_code == 400


def test_127_0_0_1_is_honoured_and_the_callback_is_rebuilt(client, alice):
    client.force_login(alice)
    params = {**PARAMS, "cli_callback": "http://127.0.0.1:0080/callback"}
    response = client.post("/login/cli/confirm", params)
    assert response["Location"].startswith("http://127.0.0.1:80/callback?token=sess_")


def test_plain_login_still_works_at_both_addresses(client, alice, alice_password):
    for path in ("/login", "/accounts/login/"):
        client.logout()
        response = client.post(path, {"username": "alice", "password": alice_password})
        assert response.status_code == 302
        assert response["Location"] == "/"
        assert "_auth_user_id" in client.session
