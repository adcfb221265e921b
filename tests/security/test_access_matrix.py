"""Every URL of the project, for anonymous, member, staff without and with permission.

The table in ``tests/security/access.py`` lists each URL pattern with the answer every role
must get, for GET and for POST. The test walks the resolver, so a pattern missing from the
table — a new page — fails the suite until someone states who may see it. Django's admin
is covered by one rule for all of its patterns: nobody but staff gets past its login.
"""

import pytest

from tests.security.access import (
    ADMIN_LOGIN,
    EXPECTED,
    ROLES,
    admin_path,
    admin_routes,
    all_routes,
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
