"""CSRF on every POST, and the security headers and strict CSP on every page.

Both walk the same table as the access matrix (every URL pattern), so a new page is
covered as soon as it is listed there.
"""

import re

import pytest
from django.test import Client

from tests.security.access import EXPECTED, ROLES, admin_path, all_routes

pytestmark = pytest.mark.django_db

# Views that skip CSRF on purpose, and why; any other exempt view fails the suite.
CSRF_EXEMPT = {
    "ingest": "authenticated by API key only, never by a session cookie",
    "api/u/<str:username>/awards": "read-only JSON: any method but GET is answered 405",
    "api/auth/sign-in/username": "the CLI's sign-in: credentials in a JSON body, no session",
    "api/auth/sign-in/email": "the CLI's sign-in: credentials in a JSON body, no session",
    "api/auth/api-key/create": "authenticated by a sign-in token in Authorization only",
    "api/u/<str:username>/score/explain": "read-only JSON: any method but GET is answered 405",
    "api/u/<str:username>/score": "read-only JSON: any method but GET is answered 405",
    "api/leaderboard": "read-only JSON: any method but GET is answered 405",
    "api/schema": "read-only JSON: any method but GET is answered 405",
}
# Exempt views that read only a JSON body: a form-encoded (forged) POST is a 400 there.
JSON_BODY_ONLY = {"api/auth/sign-in/username", "api/auth/sign-in/email"}
CSRF_REFUSED = b"CSRF verification failed"


def _routes_to_check() -> list[str]:
    return sorted(set(EXPECTED) | {r for r in all_routes() if r.startswith("admin/")})


def _path(route: str, values: dict) -> str:
    if route in EXPECTED:
        return EXPECTED[route].path.format(**values)
    return admin_path(route, all_routes()[route])


@pytest.fixture
def csrf_clients(world):
    """Clients that enforce CSRF like a browser would meet it, per role."""
    clients, values = world
    strict = {}
    for role in ROLES:
        client = Client(enforce_csrf_checks=True)
        client.cookies = clients[role].cookies  # the same session
        strict[role] = client
    return strict, values


def test_post_without_csrf_token_is_refused_on_every_url(csrf_clients):
    clients, values = csrf_clients
    problems = []
    for route in _routes_to_check():
        path = _path(route, values)
        exempt = getattr(all_routes()[route].callback, "csrf_exempt", False)
        if exempt != (route in CSRF_EXEMPT):
            problems.append(f"{route}: csrf_exempt is {exempt}; CSRF_EXEMPT must list it iff so")
        for role in ROLES:
            response = clients[role].post(path, {"reason": "x", "points": "5"})
            if exempt:
                # Nothing a forged cross-site POST can do: refused for lack of an API key,
                # or by method.
                allowed = (400, 401, 405) if route in JSON_BODY_ONLY else (401, 405)
                if response.status_code not in allowed:
                    problems.append(f"{role} POST {path}: {response.status_code}")
            elif response.status_code != 403 or CSRF_REFUSED not in response.content:
                problems.append(f"{role} POST {path}: {response.status_code}, not a CSRF 403")
    assert not problems, "\n".join(problems)


def test_the_same_post_with_a_token_gets_past_csrf(csrf_clients):
    # The control for the test above: the refusal was the missing token, not the request.
    clients, _ = csrf_clients
    client = clients["staff_perm"]
    page = client.get("/staff/awards/new")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1)
    response = client.post("/staff/awards/new", {"csrfmiddlewaretoken": token.decode()})
    assert response.status_code == 422  # the empty form's errors, nothing granted
    assert CSRF_REFUSED not in response.content


def _html_routes() -> list[str]:
    return sorted(EXPECTED)


@pytest.mark.parametrize("route", _html_routes())
def test_every_page_has_the_security_headers_and_a_nonce_csp(world, route):
    clients, values = world
    path = EXPECTED[route].path.format(**values)
    headers = EXPECTED[route].headers or {}
    for role in ROLES:
        response = clients[role].get(path, headers=headers)
        # Every answer, page or JSON or error, carries the baseline headers.
        assert response["X-Content-Type-Options"] == "nosniff", (route, role)
        assert response["X-Frame-Options"] == "DENY", (route, role)
        assert response["Referrer-Policy"] == "same-origin", (route, role)
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        csp = response["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]+)", csp)
        assert script_src, (route, role, csp)
        # Our origin, plus the per-response nonce when the page uses one; nothing else.
        sources = script_src.group(1).split()
        assert sources[0] == "'self'", (route, role, csp)
        assert all(s.startswith("'nonce-") for s in sources[1:]), (route, role, csp)
        assert "unsafe-inline" not in csp
        assert "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        nonces = {s[len("'nonce-") : -1] for s in sources[1:]}
        body = response.content.decode()
        for tag in re.findall(r"<script\b[^>]*>", body):
            # Scripts from our origin load as they are; any other must carry the nonce.
            if not re.search(r'\ssrc="/static/', tag):
                found = re.search(r'nonce="([^"]+)"', tag)
                assert found, (route, role, tag)
                assert found.group(1) in nonces, (route, role, tag)
        if re.search(r"<script\b[^>]*htmx", body):
            # Pages that load htmx configure it never to evaluate strings as code.
            assert '"allowEval": false' in body, (route, role)
        # Inline handlers and inline styles would be blocked by the CSP: none may ship.
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", body), (route, role)
        assert not re.search(r"<[^>]+\shx-on", body), (route, role)
        assert not re.search(r"<[^>]+\sstyle\s*=", body), (route, role)
        assert not re.search(r"<style\b", body), (route, role)
