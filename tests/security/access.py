"""The access table: every URL pattern of the project and what each role must get.

Used by the access matrix, CSRF and header tests. A pattern missing here fails the suite.
"""

import re
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

ROLES = ("anonymous", "member", "staff", "staff_perm")
STAFF_PERMISSIONS = [
    ("awards", "add_award"),
    ("awards", "add_awardrevocation"),
    ("awards", "view_award"),
    ("scoring", "add_apikey"),
    ("scoring", "view_scoringrules"),
    ("scoring", "change_scoringrules"),
    ("webhooks", "view_webhookendpoint"),
    ("webhooks", "change_webhookendpoint"),
    ("awards", "approve_award"),
    ("audit", "view_auditentry"),
]
# Roles beyond the four columns of the table. Each answers like the role it names, except
# on the routes listed in EXTRA_EXPECTED:
# - key_manager: staff holding only ``scoring.add_apikey`` (manages ingest keys, grants nothing);
# - demoted_owner: once staff with ``awards.add_award`` and the owner of an award key, now a
#   plain member (its key's award scope is suspended: see test_access_matrix's ingest test).
EXTRA_ROLES = {"key_manager": "staff", "demoted_owner": "member"}
# What a role gets: an HTTP status, or where a 302 leads.
LOGIN = "login"  # 302 to the site's login page, with ?next=
ADMIN_LOGIN = "admin-login"  # 302 to the admin's login page


@dataclass(frozen=True)
class Access:
    """The URL to request for a pattern and the expected answer per role (ROLES order)."""

    path: str
    get: tuple[Any, Any, Any, Any]
    post: tuple[Any, Any, Any, Any]
    post_data: dict | None = None
    headers: dict | None = None


def everyone(answer: Any) -> tuple[Any, Any, Any, Any]:
    """The same answer for every role."""
    return (answer, answer, answer, answer)


def staff_only(answer: Any) -> tuple[Any, Any, Any, Any]:
    """Login for anonymous, 403 for a member and staff without the permission."""
    return (LOGIN, 403, 403, answer)


def staff_any(answer: Any) -> tuple[Any, Any, Any, Any]:
    """Login for anonymous, 403 for a member, ``answer`` for any staff."""
    return (LOGIN, 403, answer, answer)


# Route (as Django spells the pattern) → who gets what. Placeholders in paths are filled
# from the fixture's objects.
EXPECTED: dict[str, Access] = {
    # --- public pages and JSON -----------------------------------------------------------
    "": Access("/", everyone(302), everyone(405)),
    "leaderboard/": Access("/leaderboard/", everyone(200), everyone(405)),
    "u/<str:username>/": Access("/u/{member}/", everyone(200), everyone(405)),
    "api/leaderboard": Access("/api/leaderboard", everyone(200), everyone(405)),
    "api/u/<str:username>/score": Access("/api/u/{member}/score", everyone(200), everyone(405)),
    "api/u/<str:username>/score/explain": Access(
        "/api/u/{member}/score/explain", everyone(200), everyone(405)
    ),
    "api/u/<str:username>/awards": Access("/api/u/{member}/awards", everyone(200), everyone(405)),
    "api/schema": Access("/api/schema", everyone(200), everyone(405)),
    "favicon.ico": Access("/favicon.ico", everyone(302), everyone(405)),
    # API-key authentication only: a session (even a staff one) is no credential.
    "ingest": Access("/ingest", everyone(405), everyone(401)),
    # --- accounts ------------------------------------------------------------------------
    "accounts/login/": Access("/accounts/login/", everyone(200), everyone(200)),
    "accounts/logout/": Access("/accounts/logout/", everyone(405), everyone(302)),
    "accounts/password_change/": Access(
        "/accounts/password_change/", (LOGIN, 200, 200, 200), (LOGIN, 200, 200, 200)
    ),
    "accounts/password_change/done/": Access(
        "/accounts/password_change/done/", (LOGIN, 200, 200, 200), (LOGIN, 405, 405, 405)
    ),
    "accounts/password_reset/": Access("/accounts/password_reset/", everyone(200), everyone(200)),
    "accounts/password_reset/done/": Access(
        "/accounts/password_reset/done/", everyone(200), everyone(405)
    ),
    "accounts/reset/<uidb64>/<token>/": Access(
        "/accounts/reset/{uid}/{reset_token}/", everyone(302), everyone(302)
    ),
    "accounts/reset/done/": Access("/accounts/reset/done/", everyone(200), everyone(405)),
    # --- staff ---------------------------------------------------------------------------
    "staff/": Access("/staff/", staff_any(200), everyone(405)),
    "staff/awards/": Access("/staff/awards/", staff_only(200), everyone(405)),
    "staff/awards/new": Access(
        "/staff/awards/new",
        staff_only(200),
        staff_only(422),  # an empty form: every field in error, nothing granted
    ),
    "staff/awards/validate": Access(
        "/staff/awards/validate",
        everyone(405),
        staff_only(200),
        post_data={"points": "5"},
        headers={"HX-Request": "true", "HX-Target": "field-points"},
    ),
    "staff/awards/preview": Access(
        "/staff/awards/preview?username={member}&points=10", staff_only(200), everyone(405)
    ),
    "staff/awards/bulk": Access("/staff/awards/bulk", staff_only(200), staff_only(422)),
    "staff/awards/bulk/<uuid:token>": Access(
        "/staff/awards/bulk/{job}", staff_only(200), everyone(405)
    ),
    "staff/awards/<int:award_id>/revoke": Access(
        "/staff/awards/{award}/revoke", staff_only(200), staff_only(422)
    ),
    "staff/members/search": Access("/staff/members/search?q=her", staff_any(200), everyone(405)),
    "staff/members/<str:username>/": Access(
        "/staff/members/{member}/", staff_only(200), everyone(405)
    ),
    "staff/api-keys/": Access("/staff/api-keys/", staff_only(200), staff_only(422)),
    "staff/api-keys/<int:key_id>/revoke": Access(
        "/staff/api-keys/{key}/revoke", everyone(405), staff_only(302)
    ),
    # --- sign-in, the CLI's browser flow, a member's own keys -------------------------------
    "login": Access("/login", everyone(200), everyone(200)),
    # Signed in but without the CLI's parameters: refused (400), no token issued.
    "login/cli/confirm": Access("/login/cli/confirm", everyone(405), (LOGIN, 400, 400, 400)),
    "settings/keys/": Access("/settings/keys/", (LOGIN, 200, 200, 200), (LOGIN, 422, 422, 422)),
    # {key} is the member's: only its owner revokes it; anyone else's request is a 404.
    "settings/keys/<int:key_id>/revoke": Access(
        "/settings/keys/{key}/revoke", (LOGIN, 405, 405, 405), (LOGIN, 302, 404, 404)
    ),
    # The CLI's JSON: credentials in the body or headers only, a session is no credential.
    "api/auth/sign-in/username": Access("/api/auth/sign-in/username", everyone(405), everyone(400)),
    "api/auth/sign-in/email": Access("/api/auth/sign-in/email", everyone(405), everyone(400)),
    "api/auth/api-key/create": Access("/api/auth/api-key/create", everyone(405), everyone(401)),
    "api/whoami": Access("/api/whoami", everyone(401), everyone(405)),
    "staff/rescore/": Access("/staff/rescore/", staff_only(200), staff_only(422)),
    "staff/rescore/<int:job_id>/": Access(
        "/staff/rescore/{rescore_job}/", staff_only(200), everyone(405)
    ),
    "staff/webhooks/": Access("/staff/webhooks/", staff_only(200), staff_only(422)),
    "staff/webhooks/<int:endpoint_id>/": Access(
        "/staff/webhooks/{endpoint}/", staff_only(200), everyone(405)
    ),
    "staff/webhooks/<int:endpoint_id>/active": Access(
        "/staff/webhooks/{endpoint}/active", everyone(405), staff_only(302)
    ),
    "staff/webhooks/<int:endpoint_id>/rotate": Access(
        "/staff/webhooks/{endpoint}/rotate", everyone(405), staff_only(200)
    ),
    "staff/webhooks/<int:endpoint_id>/test": Access(
        "/staff/webhooks/{endpoint}/test", everyone(405), staff_only(302)
    ),
    "staff/webhooks/deliveries/<int:delivery_id>/redeliver": Access(
        "/staff/webhooks/deliveries/{delivery}/redeliver", everyone(405), staff_only(302)
    ),
    # Award governance: staff who grant or approve see requests; approvers decide.
    "staff/awards/requests/": Access("/staff/awards/requests/", staff_only(200), everyone(405)),
    "staff/awards/requests/<int:request_id>/approve": Access(
        "/staff/awards/requests/{request}/approve", everyone(405), staff_only(302)
    ),
    "staff/awards/requests/<int:request_id>/reject": Access(
        "/staff/awards/requests/{request}/reject",
        everyone(405),
        staff_only(302),
        post_data={"reason": "Not this time"},
    ),
    "staff/audit/": Access("/staff/audit/", staff_only(200), everyone(405)),
    "staff/governance": Access("/staff/governance", staff_any(200), everyone(405)),
    # Budgets: staff who grant see them; only a superuser (none of these roles) sets one.
    "staff/awards/budgets/": Access("/staff/awards/budgets/", staff_only(200), everyone(405)),
    "staff/awards/budgets/<str:username>": Access(
        "/staff/awards/budgets/{member}",
        everyone(405),
        (LOGIN, 403, 403, 403),
        post_data={"points": "5"},
    ),
}


# Route → extra role → (GET answer, POST answer), where it differs from its model role.
EXTRA_EXPECTED: dict[str, dict[str, tuple[Any, Any]]] = {
    "staff/api-keys/": {"key_manager": (200, 422)},
    "staff/api-keys/<int:key_id>/revoke": {"key_manager": (405, 302)},
    # {key} is the plain member's own key: anyone else's revoke of it is a 404.
    "settings/keys/<int:key_id>/revoke": {"demoted_owner": (405, 404)},
}


def expected_for(route: str, role: str) -> tuple[Any, Any]:
    """(GET, POST) answers for ``role`` on ``route``, extra roles included."""
    override = EXTRA_EXPECTED.get(route, {}).get(role)
    if override is not None:
        return override
    column = ROLES.index(EXTRA_ROLES.get(role, role))
    access = EXPECTED[route]
    return access.get[column], access.post[column]


def routes_walk(patterns, prefix: str = ""):
    """(route, pattern) for every endpoint, with include prefixes joined."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from routes_walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern


def all_routes() -> dict[str, URLPattern]:
    return dict(routes_walk(get_resolver().url_patterns))


def admin_routes() -> list[str]:
    return [route for route in all_routes() if route.startswith("admin/")]


def outcome(response) -> Any:
    # An htmx request is sent to the login page by HX-Redirect (a 302 would be swapped in).
    if response.get("HX-Redirect", "").startswith("/accounts/login/?next="):
        return LOGIN
    if response.status_code == 302:
        location = response["Location"]
        if location.startswith("/admin/login/"):
            return ADMIN_LOGIN
        if location.startswith("/accounts/login/?next="):
            return LOGIN
    return response.status_code


def admin_path(route: str, pattern: URLPattern) -> str:
    # Fill every converter or regex group with something plausible; what matters here is
    # that the URL resolves to the pattern, not that the object exists.
    path = "/" + route
    path = re.sub(r"<path:\w+>|<int:\w+>|<\w+>", "1", path)
    path = re.sub(r"\^|\$", "", path)
    path = re.sub(r"\(\?P<app_label>[^)]*\)", "auth", path)
    return re.sub(r"\(\?P<\w+>[^)]*\)", "1", path)
