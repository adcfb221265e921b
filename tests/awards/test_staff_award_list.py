"""The award list (/staff/awards/): filters, pagination, CSV export, permissions."""

import csv
import io
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission

from tests.factories import AwardFactory, AwardRevocationFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/staff/awards/"


def when(day: int) -> datetime:
    return datetime(2026, 3, day, 12, 0, tzinfo=UTC)


@pytest.fixture
def ledger(db):
    """Five awards across two members, two granters, categories, dates; one revoked."""
    heron, egret = (
        UserFactory(username="heron", staff=True),
        UserFactory(username="egret", staff=True),
    )
    bog, fen = UserFactory(username="bog"), UserFactory(username="fen")
    awards = {
        "a": AwardFactory(
            recipient=bog,
            granted_by=heron,
            category="event",
            granted_at=when(1),
            reason="Ran the meetup",
        ),
        "b": AwardFactory(
            recipient=bog,
            granted_by=egret,
            category="content",
            granted_at=when(5),
            reason='=HYPERLINK("http://evil")',
        ),
        "c": AwardFactory(
            recipient=fen,
            granted_by=heron,
            category="event",
            granted_at=when(10),
            reason="Hosted the swamp walk",
            staff_note="budget approved",
        ),
        "d": AwardFactory(
            recipient=fen,
            granted_by=egret,
            category="bug_report",
            granted_at=when(15),
            reason="Found the crash",
        ),
        "e": AwardFactory(
            recipient=fen,
            granted_by=None,
            source="api",
            category="other",
            granted_at=when(20),
            reason="Bot grant",
            granted_by_text="ci-bot",
        ),
    }
    AwardRevocationFactory(award=awards["d"], revoked_by=heron, reason="Not reproducible")
    return awards


def reasons(response) -> list[str]:
    return [a.reason for a in response.context["page"].awards]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {},
            [
                "Bot grant",
                "Found the crash",
                "Hosted the swamp walk",
                '=HYPERLINK("http://evil")',
                "Ran the meetup",
            ],
        ),
        ({"member": "BOG"}, ['=HYPERLINK("http://evil")', "Ran the meetup"]),
        ({"category": "event"}, ["Hosted the swamp walk", "Ran the meetup"]),
        ({"granter": "egret"}, ["Found the crash", '=HYPERLINK("http://evil")']),
        (
            {"date_from": "2026-03-05", "date_to": "2026-03-15"},
            ["Found the crash", "Hosted the swamp walk", '=HYPERLINK("http://evil")'],
        ),
        ({"status": "revoked"}, ["Found the crash"]),
        ({"status": "active", "member": "fen"}, ["Bot grant", "Hosted the swamp walk"]),
    ],
)
def test_filters(staff_client, ledger, query, expected):
    response = staff_client.get(URL, query)
    assert response.status_code == 200
    assert reasons(response) == expected


def test_page_shows_revocation_and_granter(staff_client, ledger):
    html = staff_client.get(URL).content.decode()
    assert "Not reproducible" in html
    assert "5 awards" in html
    assert 'hx-get="/staff/awards/"' in html


def test_invalid_filter_shows_error_and_lists_nothing(staff_client, ledger):
    response = staff_client.get(URL, {"date_from": "2026-03-10", "date_to": "2026-03-01"})
    assert response.status_code == 422
    assert response.context["page"] is None
    assert "The end date is before the start date" in response.content.decode()


def test_htmx_filter_returns_results_fragment(staff_client, ledger, htmx_headers):
    headers = {**htmx_headers, "HX-Target": "award-results"}
    response = staff_client.get(URL, {"category": "event"}, headers=headers)
    html = response.content.decode()
    assert html.strip().startswith('<section id="award-results"')
    assert "2 awards" in html
    assert "<form" not in html


def test_keyset_pages_walk_every_award_once_and_keep_filters(staff_client, ledger):
    member = UserFactory(username="many")
    moment = when(25)
    # Ties on granted_at are settled by id, so no award is skipped or repeated.
    AwardFactory.create_batch(120, recipient=member, category="community", granted_at=moment)
    first = staff_client.get(URL, {"member": "many"})
    page = first.context["page"]
    assert (len(page.awards), page.total, page.newer) == (50, 120, None)
    html = first.content.decode()
    assert f"?member=many&amp;before={page.older}" in html
    seen = [a.pk for a in page.awards]
    pages = [page]
    while pages[-1].older:
        response = staff_client.get(URL, {"member": "many", "before": pages[-1].older})
        pages.append(response.context["page"])
        seen += [a.pk for a in pages[-1].awards]
    assert [len(p.awards) for p in pages] == [50, 50, 20]
    assert sorted(seen, reverse=True) == seen
    assert len(set(seen)) == 120
    # "Newer" from the last page returns the middle page exactly.
    back = staff_client.get(URL, {"member": "many", "after": pages[2].newer})
    assert [a.pk for a in back.context["page"].awards] == [a.pk for a in pages[1].awards]
    # Newer again reaches the top: the first page with its own boundaries.
    top = staff_client.get(URL, {"member": "many", "after": pages[1].newer})
    assert [a.pk for a in top.context["page"].awards] == [a.pk for a in pages[0].awards]
    assert top.context["page"].newer is None


def test_unreadable_cursor_means_first_page(staff_client, ledger):
    response = staff_client.get(URL, {"before": "yesterday"})
    assert response.status_code == 200
    assert len(response.context["page"].awards) == 5


def test_unknown_member_filter_is_an_error_beside_the_field(staff_client, ledger):
    response = staff_client.get(URL, {"member": "ghost"})
    assert response.status_code == 422
    assert "No member is called “ghost”" in response.content.decode()


def test_csv_export_streams_filtered_rows_and_defuses_formulas(staff_client, ledger):
    response = staff_client.get(URL, {"member": "bog", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert response.streaming
    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["reason"] for r in rows] == ['\'=HYPERLINK("http://evil")', "Ran the meetup"]
    assert rows[1]["granted_by"] == "heron"
    assert rows[1]["category"] == "event"
    assert rows[1]["revoked_at"] == ""


def test_csv_export_includes_revocation_staff_note_and_api_granter(staff_client, ledger):
    response = staff_client.get(URL, {"member": "fen", "format": "csv"})
    rows = {
        r["reason"]: r
        for r in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    }
    assert rows["Found the crash"]["revocation_reason"] == "Not reproducible"
    assert rows["Found the crash"]["revoked_by"] == "heron"
    assert rows["Hosted the swamp walk"]["staff_note"] == "budget approved"
    assert rows["Bot grant"]["granted_by_text"] == "ci-bot"
    assert rows["Bot grant"]["source"] == "api"


@pytest.mark.parametrize("count", [3, 60])
def test_query_count_does_not_grow_with_rows(staff_client, count, django_assert_max_num_queries):
    granter = UserFactory(username="heron", staff=True)
    for index in range(count):
        award = AwardFactory(recipient=UserFactory(), granted_by=granter)
        if index % 2:
            AwardRevocationFactory(award=award, revoked_by=granter)
    # Session, user, permissions (2), page, count; the count once cached: no count.
    with django_assert_max_num_queries(6):
        response = staff_client.get(URL)
    assert response.status_code == 200
    with django_assert_max_num_queries(5):
        assert staff_client.get(URL).context["page"].total == count
    with django_assert_max_num_queries(6):
        export = staff_client.get(URL, {"format": "csv"})
        body = b"".join(export.streaming_content)
    assert body.count(b"\n") == count + 1


def test_cached_counts_follow_every_grant_and_revocation(staff_client, ledger):
    def totals() -> tuple[int, int, int]:
        return tuple(
            staff_client.get(URL, query).context["page"].total
            for query in ({}, {"status": "revoked"}, {"member": "bog"})
        )

    assert totals() == (5, 1, 2)
    assert totals() == (5, 1, 2)  # the same filters again: answered from the cache
    bog = ledger["a"].recipient
    new = AwardFactory(recipient=bog, granted_by=ledger["a"].granted_by, granted_at=when(25))
    assert totals() == (6, 1, 3)
    AwardRevocationFactory(award=new, revoked_by=ledger["a"].granted_by, reason="Duplicate")
    assert totals() == (6, 2, 3)


def test_needs_view_permission(client, ledger):
    assert client.get(URL).status_code == 302
    client.force_login(UserFactory(username="plainstaff", staff=True))
    assert client.get(URL).status_code == 403
    assert client.get(URL, {"format": "csv"}).status_code == 403
    viewer = UserFactory(username="viewer", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_award"))
    client.force_login(viewer)
    assert client.get(URL).status_code == 200
