"""Every paginated URL answers hostile query parameters with a 2xx/3xx/4xx, never a 5xx.

Page numbers, cursors, limits and the filters beside them are fuzzed: huge and negative
numbers, text with NUL, and cursors that decode (base64 JSON) to out-of-range values.
"""

import base64
import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from awards.services import award_grant
from members.leaderboard import Cursor
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every paginated URL, the parameters it reads, and who asks (staff pages need a login).
PAGINATED = {
    "/u/heron/": (["page"], "anonymous"),
    "/leaderboard/": (["window", "cursor"], "anonymous"),
    "/api/leaderboard": (["window", "cursor"], "anonymous"),
    "/api/u/heron/awards": (["limit"], "anonymous"),
    "/staff/awards/": (
        ["before", "after", "member", "granter", "category", "date_from", "date_to", "status"],
        "staff",
    ),
    "/staff/members/search": (["q", "username"], "staff"),
}

huge = st.sampled_from([0, -1, 1, 2, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**18, 10**30])
numbers = st.integers() | huge
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30) | st.sampled_from(
    [
        "",
        "\x00",
        "a\x00b",
        "1.2",
        "1e9",
        "9999-12-31",
        "0001-01-01",
        "all",
        "7d",
        "30d",
        "csv",
        "9" * 5000,
    ]
)
json_value = st.one_of(
    st.none(),
    st.booleans(),
    numbers,
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.lists(numbers, max_size=2),
)


@st.composite
def board_cursors(draw) -> str:
    """Base64 JSON in the leaderboard cursor's shape, with any values in its fields."""
    window = draw(st.sampled_from(["all", "7d", "30d"]) | text)
    fields = [
        window,
        draw(numbers | json_value),
        draw(text | json_value),
        draw(st.sampled_from(["a", "b"]) | text),
        draw(st.none() | numbers | st.floats()),
    ]
    if draw(st.booleans()):
        fields += [draw(numbers), draw(numbers)]
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def keyset_cursors() -> st.SearchStrategy[str]:
    """The staff list's ``<micros>.<id>`` cursors with numbers out of any range."""
    return st.builds(lambda a, b: f"{a}.{b}", numbers, numbers)


value = st.one_of(numbers.map(str), text, board_cursors(), keyset_cursors())


@pytest.fixture
def clients(db):
    """An anonymous and a staff client (with every award permission), and some data."""
    from django.test import Client

    granter = UserFactory(username="warden", granter=True, permissions=["awards.view_award"])
    heron = UserFactory(username="heron")
    for n in range(3):
        award_grant(
            recipient=heron,
            points=10 + n,
            reason=f"Reason {n}",
            idempotency_key=f"fuzz-{n}",
            granted_by=granter,
            source="form",
        )
    staff = Client(raise_request_exception=False)
    staff.force_login(granter)
    anonymous = Client(raise_request_exception=False)
    return {"anonymous": anonymous, "staff": staff}


def _assert_no_5xx(clients, path: str, params: list[tuple[str, str]], headers=None) -> None:
    role = PAGINATED[path][1]
    url = f"{path}?{urlencode(params)}"
    response = clients[role].get(url, headers=headers or {})
    assert response.status_code < 500, f"GET {url} → {response.status_code}"


@pytest.mark.parametrize("path", sorted(PAGINATED))
@FUZZ
@given(data=st.data())
def test_paginated_urls_never_5xx(clients, path, data):
    names = PAGINATED[path][0]
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=len(names)))
    params = [(name, data.draw(value, label=name)) for name in chosen]
    headers = data.draw(st.sampled_from([None, {"HX-Request": "true"}]))
    _assert_no_5xx(clients, path, params, headers)


@pytest.mark.parametrize(
    "page", ["1000000000000000000", str(2**63), str(2**64 + 1), "9" * 5000, "2", "0", "-1"]
)
@pytest.mark.parametrize("htmx", [False, True])
def test_profile_pages_out_of_range_are_404(clients, page, htmx):
    # Once a 500: the OFFSET overflowed the database's integer. Page 2 is past the end here
    # (three awards, twenty a page).
    headers = {"HX-Request": "true"} if htmx else {}
    response = clients["anonymous"].get(f"/u/heron/?page={page}", headers=headers)
    assert response.status_code == 404


def test_profile_last_page_is_found(clients):
    assert clients["anonymous"].get("/u/heron/?page=1").status_code == 200


@pytest.mark.parametrize(
    ("value", "username"),
    [(2**63, "heron"), (-(2**63) - 1, "heron"), (10**30, "heron"), (5, "he\x00ron")],
)
# The page says which parameter is wrong (400); the JSON, whose schema allows any
# well-formed cursor, answers one that names no place 404 (docs/members.md).
@pytest.mark.parametrize(("path", "status"), [("/leaderboard/", 400), ("/api/leaderboard", 404)])
def test_leaderboard_cursors_out_of_range_are_4xx(clients, path, status, value, username):
    cursor = Cursor(window="all", value=value, username=username, direction="after").encode()
    assert clients["anonymous"].get(path, {"cursor": cursor}).status_code == status


@pytest.mark.parametrize(
    "params",
    [
        {"before": f"{2**70}.1"},
        {"after": f"1.{2**70}"},
        {"before": f"{10**20}.{10**20}"},
        {"date_to": "9999-12-31"},
        {"date_from": "0001-01-01", "date_to": "9999-12-31"},
    ],
)
def test_staff_award_list_out_of_range_is_not_5xx(clients, params):
    response = clients["staff"].get("/staff/awards/", params)
    assert response.status_code in (200, 422)
