"""A member's staff page (/staff/members/<username>/) and revoking from its history."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from awards.models import Award, AwardRevocation
from staff.selectors.member_detail import heatmap_build
from tests.factories import (
    AwardFactory,
    AwardRevocationFactory,
    MemberMetricsFactory,
    TierBadgeClaimFactory,
    UserFactory,
    UserScoreFactory,
)

pytestmark = pytest.mark.django_db


def page_url(member) -> str:
    return f"/staff/members/{member.username}/"


@pytest.fixture
def bogwalker(db):
    member = UserFactory(username="bogwalker")
    today = timezone.now().date()
    MemberMetricsFactory(
        member=member,
        event_counts={"model": 30, "workflow": 120, "data": 5},
        active_dates=[(today - timedelta(days=n)).isoformat() for n in range(5)],
        total_events=155,
        award_points=600,
    )
    UserScoreFactory(member=member, activity_score=1755, award_points=600, streak_days=5)
    TierBadgeClaimFactory(member=member, tier=1)
    return member


def test_page_shows_breakdown_metrics_heatmap_history_and_grant_form(staff_client, bogwalker):
    granter = UserFactory(username="heron", staff=True)
    AwardFactory(
        recipient=bogwalker,
        points=600,
        reason="Wrote the tutorial",
        granted_by=granter,
        staff_note="Checked with the docs team",
    )
    revoked = AwardFactory(recipient=bogwalker, points=50, reason="Duplicate grant")
    AwardRevocationFactory(award=revoked, revoked_by=granter, reason="Granted twice by mistake")
    response = staff_client.get(page_url(bogwalker))
    assert response.status_code == 200
    html = response.content.decode()
    assert "1,755" in html
    assert "600" in html
    assert "2,355" in html
    assert "workflow" in html
    assert "<meter" in html
    assert html.count('class="hm hm-on"') == 5  # five active days in the heatmap
    assert "Wrote the tutorial" in html
    assert "Checked with the docs team" in html
    assert "Granted twice by mistake" in html
    assert "revoked" in html
    assert 'id="award-history"' in html
    assert 'hx-trigger="award-granted from:body' in html
    assert 'id="grant-form"' in html
    assert 'value="bogwalker"' in html
    assert f'action="/staff/awards/{revoked.pk}/revoke"' not in html  # no revoke for revoked
    assert "Sludge Whelp" in html


def test_unknown_member_is_404(staff_client):
    assert staff_client.get("/staff/members/nobody/").status_code == 404


def test_history_panel_reloads_alone(staff_client, bogwalker, htmx_headers):
    AwardFactory(recipient=bogwalker, reason="Fixed the bridge")
    headers = {**htmx_headers, "HX-Target": "award-history"}
    response = staff_client.get(page_url(bogwalker), headers=headers)
    html = response.content.decode()
    assert html.strip().startswith('<section id="award-history"')
    assert "Fixed the bridge" in html
    assert 'id="grant-form"' not in html
    assert 'id="member-score"' not in html
    assert "HX-Target" in response["Vary"]


def test_score_panel_reloads_alone(staff_client, bogwalker, htmx_headers):
    headers = {**htmx_headers, "HX-Target": "member-score"}
    html = staff_client.get(page_url(bogwalker), headers=headers).content.decode()
    assert html.strip().startswith('<section id="member-score"')
    assert 'id="award-history"' not in html


def test_each_row_loads_its_own_revoke_form_when_opened(staff_client, bogwalker, htmx_headers):
    first = AwardFactory(recipient=bogwalker, points=1_500)
    second = AwardFactory(recipient=bogwalker)
    html = staff_client.get(page_url(bogwalker)).content.decode()
    for award in (first, second):
        # Without JavaScript the disclosure links to the revoke page.
        slot = f'<div id="revoke-form-{award.pk}" class="revoke-slot">'
        assert f'{slot}<a href="/staff/awards/{award.pk}/revoke">' in html
        assert f'hx-target="#revoke-form-{award.pk}"' in html
    assert 'hx-trigger="toggle once"' in html
    headers = {**htmx_headers, "HX-Target": f"revoke-form-{first.pk}"}
    fragment = staff_client.get(f"/staff/awards/{first.pk}/revoke", headers=headers)
    body = fragment.content.decode()
    assert body.lstrip().startswith(f'<div id="revoke-form-{first.pk}"')
    assert "<html" not in body
    assert f'id="id_revoke_{first.pk}_reason"' in body
    assert f'for="id_revoke_{first.pk}_reason"' in body
    assert "autofocus" in body
    assert f'hx-target="#revoke-form-{first.pk}"' in body
    assert "Revoke 1,500 points from bogwalker?" in body


def test_viewer_without_revoke_permission_sees_no_revoke_and_no_grant_form(client, bogwalker):
    viewer = UserFactory(username="viewer", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_award"))
    client.force_login(viewer)
    AwardFactory(recipient=bogwalker)
    html = client.get(page_url(bogwalker)).content.decode()
    assert "/revoke" not in html
    assert 'id="grant-form"' not in html


def test_staff_without_view_permission_gets_403_and_anonymous_login(client, bogwalker):
    assert client.get(page_url(bogwalker)).status_code == 302
    client.force_login(UserFactory(username="plainstaff", staff=True))
    assert client.get(page_url(bogwalker)).status_code == 403


@pytest.mark.parametrize("awards", [3, 60])
def test_query_count_does_not_grow_with_awards(
    staff_client, bogwalker, awards, django_assert_max_num_queries
):
    granter = UserFactory(username="heron", staff=True)
    for index in range(awards):
        award = AwardFactory(recipient=bogwalker, granted_by=granter)
        if index % 3 == 0:
            AwardRevocationFactory(award=award, revoked_by=granter)
    # Session, user, member, score, metrics, claims, tier changes, history, recent awards,
    # event lineage, rejected events... the same budget whether the member has 3 awards or 60.
    with django_assert_max_num_queries(12):
        response = staff_client.get(page_url(bogwalker))
    assert response.content.decode().count('<tr id="award-') == awards


def test_history_shows_the_latest_hundred_and_links_to_all(staff_client, bogwalker):
    Award.objects.bulk_create(
        [
            Award(
                recipient=bogwalker,
                points=1,
                reason=f"Thanks #{n}",
                idempotency_key=f"k{n}",
                source="form",
                granted_at=timezone.now(),
            )
            for n in range(105)
        ]
    )
    html = staff_client.get(page_url(bogwalker)).content.decode()
    assert html.count('<tr id="award-') == 100
    assert "Showing the latest 100 of 105 awards" in html


# --- revoking from a row (the revoke view itself is tested with the award services) ---------


def test_htmx_revoke_fires_event_and_history_then_shows_it(staff_client, bogwalker, htmx_headers):
    award = AwardFactory(recipient=bogwalker, points=600)
    response = staff_client.post(
        f"/staff/awards/{award.pk}/revoke",
        {"reason": "Granted to the wrong member"},
        headers=htmx_headers,
    )
    assert response.status_code == 200
    assert "award-revoked" in response["HX-Trigger"]
    assert 'id="history-status"' not in response.content.decode()  # not from a row
    assert AwardRevocation.objects.filter(award=award).count() == 1
    history = staff_client.get(
        page_url(bogwalker), headers={**htmx_headers, "HX-Target": "award-history"}
    )
    html = history.content.decode()
    assert "Granted to the wrong member" in html
    assert "warden" in html


def test_revoke_from_a_row_keeps_the_row_id_and_announces_outside_the_panel(
    staff_client, bogwalker, htmx_headers
):
    award = AwardFactory(recipient=bogwalker, points=600)
    headers = {**htmx_headers, "HX-Target": f"revoke-form-{award.pk}"}
    invalid = staff_client.post(f"/staff/awards/{award.pk}/revoke", {"reason": ""}, headers=headers)
    assert invalid.status_code == 422
    assert invalid.content.decode().lstrip().startswith(f'<div id="revoke-form-{award.pk}"')
    assert f'for="id_revoke_{award.pk}_reason"' in invalid.content.decode()
    response = staff_client.post(
        f"/staff/awards/{award.pk}/revoke", {"reason": "Wrong member"}, headers=headers
    )
    html = response.content.decode()
    assert html.lstrip().startswith(f'<div id="revoke-form-{award.pk}"')
    assert '<p id="history-status"' in html
    assert 'hx-swap-oob="true"' in html
    assert AwardRevocation.objects.get(award=award).reason == "Wrong member"


def test_plain_revoke_redirects_to_member_page(staff_client, bogwalker):
    award = AwardFactory(recipient=bogwalker)
    response = staff_client.post(f"/staff/awards/{award.pk}/revoke", {"reason": "Mistake"})
    assert response.status_code == 302
    assert response["Location"] == page_url(bogwalker)


# --- the heatmap geometry --------------------------------------------------------------------


def test_heatmap_covers_53_weeks_monday_first_and_ignores_other_dates():
    today = timezone.now().date().replace(year=2026, month=11, day=24)  # a Tuesday
    heatmap = heatmap_build(
        active_dates=["2026-11-24", "2026-11-23", "2024-01-01", "garbage", "2026-11-25"],
        today=today,
    )
    assert heatmap.first_day.weekday() == 0
    assert heatmap.last_day == today
    assert (today - heatmap.first_day).days == 52 * 7 + 1
    assert heatmap.active_count == 2
    on = [cell for cell in heatmap.cells if cell.active]
    assert [cell.day.isoformat() for cell in on] == ["2026-11-23", "2026-11-24"]
    assert on[0].x == on[1].x  # same week column
    assert on[1].y > on[0].y  # Tuesday below Monday
