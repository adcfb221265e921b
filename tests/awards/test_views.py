"""``GET /api/u/<username>/awards`` and ``/staff/awards/<id>/revoke``."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission

from awards.models import AwardRevocation
from awards.services import award_grant, award_revoke
from scoring.models import MemberMetrics
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def grant(member, granter, key, *, days=0, **extra):
    kwargs = {
        "recipient": member,
        "points": 100,
        "reason": f"Reason for {key}",
        "idempotency_key": key,
        "granted_by": granter,
        "source": "form",
        "granted_at": T0 + timedelta(days=days),
    }
    kwargs.update(extra)
    return award_grant(**kwargs).award


# --- the awards JSON ---------------------------------------------------------------------------


def test_awards_json_lists_newest_first_with_privacy(client, member, granter):
    old = grant(member, granter, "old", days=0, category="event")
    private = grant(member, granter, "private", days=2, public=False, staff_note="secret note")
    revoked = grant(member, granter, "revoked", days=1, points=7)
    award_revoke(award=revoked, revoked_by=granter, reason="Duplicate")

    response = client.get(f"/api/u/{member.username}/awards")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "awards": [
            {
                "id": private.pk,
                "points": 100,
                "reason": None,
                "category": "other",
                "granted_at": "2026-11-03T12:00:00+00:00",
                "revoked": False,
            },
            {
                "id": revoked.pk,
                "points": 7,
                "reason": "Reason for revoked",
                "category": "other",
                "granted_at": "2026-11-02T12:00:00+00:00",
                "revoked": True,
            },
            {
                "id": old.pk,
                "points": 100,
                "reason": "Reason for old",
                "category": "event",
                "granted_at": "2026-11-01T12:00:00+00:00",
                "revoked": False,
            },
        ]
    }
    assert b"secret note" not in response.content


def test_awards_granted_in_the_same_instant_are_ordered_newest_id_first(client, member, granter):
    first = grant(member, granter, "a")
    second = grant(member, granter, "b")
    ids = [a["id"] for a in client.get(f"/api/u/{member.username}/awards").json()["awards"]]
    assert ids == [second.pk, first.pk]


def test_awards_json_for_a_member_without_awards_is_an_empty_list(client, member):
    assert client.get(f"/api/u/{member.username}/awards").json() == {"awards": []}


@pytest.mark.parametrize("username", ["nobody", "gone"])
def test_awards_json_for_an_unknown_member_is_404(client, username):
    UserFactory(username="gone", is_active=False)
    response = client.get(f"/api/u/{username}/awards")
    assert response.status_code == 404
    assert response.json() == {"error": "not_found"}


def test_awards_json_limit_returns_the_newest(client, member, granter):
    for day in range(5):
        grant(member, granter, f"k{day}", days=day)
    awards = client.get(f"/api/u/{member.username}/awards?limit=2").json()["awards"]
    assert [a["reason"] for a in awards] == ["Reason for k4", "Reason for k3"]


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", ""])
def test_awards_json_bad_limit_is_400_naming_it(client, member, limit):
    response = client.get(f"/api/u/{member.username}/awards?limit={limit}")
    assert response.status_code == 400
    assert response.json()["field"] == "limit"


def test_awards_json_query_count_does_not_grow_with_awards(
    client, member, granter, django_assert_num_queries
):
    for day in range(30):
        award = grant(member, granter, f"k{day}", days=day)
        if day % 3 == 0:
            award_revoke(award=award, revoked_by=granter, reason="Test revocation")
    with django_assert_num_queries(2):
        response = client.get(f"/api/u/{member.username}/awards")
    assert len(response.json()["awards"]) == 30


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "QUERY"])
def test_awards_json_refuses_other_methods_with_json_405(client, member, method):
    response = client.generic(method, f"/api/u/{member.username}/awards")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"
    assert response.json()["error"] == "method_not_allowed"


def test_awards_json_answers_head(client, member):
    assert client.head(f"/api/u/{member.username}/awards").status_code == 200


# --- the revoke page -------------------------------------------------------------------------


@pytest.fixture
def award(member, granter):
    """A 500-point award to ``member``."""
    return grant(member, granter, "to-revoke", points=500, reason="Wrote the bog guide")


def url(award) -> str:
    return f"/staff/awards/{award.pk}/revoke"


def test_anonymous_is_sent_to_log_in(client, award):
    response = client.post(url(award), {"reason": "Duplicate award"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert not AwardRevocation.objects.exists()


def test_anonymous_htmx_request_gets_a_full_page_redirect(client, award, htmx_headers):
    response = client.post(url(award), {"reason": "Duplicate award"}, headers=htmx_headers)
    assert response["HX-Redirect"].startswith("/accounts/login/")


@pytest.mark.parametrize("kind", ["member", "staff without the permission"])
def test_without_the_revoke_permission_is_403(client, award, kind):
    user = UserFactory(staff=kind != "member")
    if kind == "member":
        user.user_permissions.add(Permission.objects.get(codename="add_awardrevocation"))
    client.force_login(user)
    assert client.get(url(award)).status_code == 403
    assert client.post(url(award), {"reason": "Duplicate award"}).status_code == 403
    assert not AwardRevocation.objects.exists()


def test_get_shows_the_confirmation_form(staff_client, award):
    response = staff_client.get(url(award))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Wrote the bog guide" in body
    assert 'name="reason"' in body
    assert "csrfmiddlewaretoken" in body


def test_unknown_award_is_404(staff_client):
    assert staff_client.get("/staff/awards/999999/revoke").status_code == 404


def test_plain_post_revokes_and_redirects_to_the_member_page(staff_client, award, staff_user):
    response = staff_client.post(url(award), {"reason": "  Granted twice  "})
    assert response.status_code == 302
    assert response["Location"] == f"/staff/members/{award.recipient.username}/"
    revocation = AwardRevocation.objects.get()
    assert (revocation.award, revocation.revoked_by, revocation.reason) == (
        award,
        staff_user,
        "Granted twice",
    )
    assert MemberMetrics.objects.get(member=award.recipient).award_points == 0


def test_htmx_post_answers_the_fragment_and_announces_the_revocation(
    staff_client, award, htmx_headers
):
    response = staff_client.post(url(award), {"reason": "Granted twice"}, headers=htmx_headers)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="revoke-form"')
    assert "<html" not in body
    assert "revoked" in body
    assert response["HX-Trigger"] == (
        f'{{"award-revoked": {{"award_id": {award.pk}, '
        f'"username": "{award.recipient.username}", "total": 0}}}}'
    )


def test_revoking_twice_changes_nothing_and_says_so(staff_client, award, htmx_headers):
    staff_client.post(url(award), {"reason": "Granted twice"})
    response = staff_client.post(url(award), {"reason": "Again"}, headers=htmx_headers)
    assert response.status_code == 200
    assert "already revoked" in response.content.decode()
    assert "HX-Trigger" not in response
    assert AwardRevocation.objects.count() == 1
    # The page of a revoked award shows the revocation instead of the form.
    page = staff_client.get(url(award)).content.decode()
    assert "Granted twice" in page
    assert 'name="reason"' not in page


@pytest.mark.parametrize("reason", ["", "no", "x" * 501])
def test_invalid_reason_is_422_beside_the_field_and_revokes_nothing(
    staff_client, award, htmx_headers, reason
):
    fragment = staff_client.post(url(award), {"reason": reason}, headers=htmx_headers)
    assert fragment.status_code == 422
    assert 'class="errorlist' in fragment.content.decode()
    assert "<html" not in fragment.content.decode()

    page = staff_client.post(url(award), {"reason": reason})
    assert page.status_code == 422
    assert "<html" in page.content.decode()
    assert 'class="errorlist' in page.content.decode()
    assert not AwardRevocation.objects.exists()


def test_revoke_refuses_other_methods(staff_client, award):
    assert staff_client.put(url(award)).status_code == 405


def test_revocation_needs_csrf(client, staff_user, award):
    from django.test import Client

    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff_user)
    assert csrf_client.post(url(award), {"reason": "Granted twice"}).status_code == 403
    assert not AwardRevocation.objects.exists()
