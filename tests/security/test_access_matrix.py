"""Every URL of the project, for anonymous, member, staff without and with permission.

The table in ``tests/security/access.py`` lists each URL pattern with the answer every role
must get, for GET and for POST. The test walks the resolver, so a pattern missing from the
table — a new page — fails the suite until someone states who may see it. Django's admin
is covered by one rule for all of its patterns: nobody but staff gets past its login.
Two more roles answer like one of the four unless the table says otherwise: a key manager
(staff holding only ``scoring.add_apikey``) and a demoted key owner (once a granter with an
award key, now a plain member), whose key is also tried at ``/ingest``.
"""

import json

import pytest
from django.test import Client

from scoring.models import TelemetryEvent
from tests.cli_wire import bot_award_event, cli_event
from tests.security.access import (
    ADMIN_LOGIN,
    EXPECTED,
    EXTRA_ROLES,
    ROLES,
    admin_path,
    admin_routes,
    all_routes,
    expected_for,
    outcome,
)

pytestmark = pytest.mark.django_db


def test_every_url_pattern_is_in_the_table():
    routes = set(all_routes())
    listed = set(EXPECTED)
    unlisted = sorted(r for r in routes - listed if not r.startswith("admin/"))
    assert not unlisted, f"URL patterns with no access rule: {unlisted} — add them to EXPECTED"
    assert not listed - routes, f"rules for patterns that no longer exist: {listed - routes}"


@pytest.mark.parametrize("route", sorted(EXPECTED))
def test_each_role_gets_the_expected_answer(world, route):
    clients, values = world
    access = EXPECTED[route]
    path = access.path.format(**values)
    # Each request is made afresh for each role; the POST ones go last, as they may change
    # state (the only state-changing POST with these inputs is the key revocation, which
    # succeeds for the one role allowed and leaves nothing for the others to differ on).
    headers = access.headers or {}
    got_get = tuple(outcome(clients[role].get(path, headers=headers)) for role in ROLES)
    got_post = tuple(
        outcome(clients[role].post(path, access.post_data or {}, headers=headers)) for role in ROLES
    )
    assert got_get == access.get, f"GET {path}: {dict(zip(ROLES, got_get, strict=True))}"
    assert got_post == access.post, f"POST {path}: {dict(zip(ROLES, got_post, strict=True))}"
    # The extra roles: a key manager and a demoted key owner (see EXTRA_ROLES).
    for role in EXTRA_ROLES:
        got = (
            outcome(clients[role].get(path, headers=headers)),
            outcome(clients[role].post(path, access.post_data or {}, headers=headers)),
        )
        assert got == expected_for(route, role), f"{role} GET/POST {path}: {got}"


# /ingest with each role's API key: what the key's owner may do now decides.
INGEST_BY_KEY = {
    # key → (cli_invocation, award)
    "staff_perm": (202, 202),
    "demoted_owner": (202, 403),
}


@pytest.mark.parametrize("role", sorted(INGEST_BY_KEY))
def test_ingest_answers_each_key_by_what_its_owner_may_do_now(world, role, settings):
    settings.INGEST_RATE_LIMIT = 10**9
    _, values = world
    ingest = Client(HTTP_X_API_KEY=values["keys"][role])
    bodies = (
        cli_event(f"matrix-{role}"),
        bot_award_event(username=values["member"], points=5, reason="Matrix", award_id=f"m-{role}"),
    )
    got = []
    for body in bodies:
        before = TelemetryEvent.objects.count()
        response = ingest.post("/ingest", json.dumps(body), content_type="application/json")
        got.append(response.status_code)
        stored = TelemetryEvent.objects.count() - before
        assert stored == (1 if response.status_code == 202 else 0), (role, body["event"])
    assert tuple(got) == INGEST_BY_KEY[role]


def test_admin_lets_in_nobody_but_staff(world):
    # One test over all of the admin's patterns (dozens, one rule): each failure is listed.
    clients, _ = world
    problems = []
    for route in admin_routes():
        path = admin_path(route, all_routes()[route])
        for role in ROLES:
            got = outcome(clients[role].get(path))
            if role in ("anonymous", "member"):
                if route == "admin/login/":
                    allowed: tuple = (200,)
                elif route == "admin/logout/":
                    allowed = (302, 405)
                else:
                    allowed = (ADMIN_LOGIN, 404)
            else:
                allowed = (200, 302, 403, 404, 405)
            if got not in allowed:
                problems.append(f"{role} GET {path} ({route}): {got}, expected one of {allowed}")
    assert not problems, "\n".join(problems)
