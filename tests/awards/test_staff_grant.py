"""The grant form (/staff/awards/new): page, HTMX fragments, validation, idempotency, preview."""

import json
import re

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from awards.models import Award
from awards.services import award_grant
from scoring.models import TierChange, UserScore
from tests.factories import AwardFactory, UserFactory, UserScoreFactory

pytestmark = pytest.mark.django_db

URL = "/staff/awards/new"


def form_data(username, /, **overrides):
    data = {
        "username": username,
        "points": "500",
        "reason": "Ran the spring meetup",
        "category": "event",
        "public": "on",
        "staff_note": "Paid for the pizza too",
        "idempotency_key": "form-test-key-1",
    }
    data.update(overrides)
    return data


def key_in(html: str) -> str:
    match = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert match, "the form has a hidden idempotency key"
    return match.group(1)


def test_page_renders_form_with_fresh_key_each_time(staff_client):
    first = staff_client.get(URL)
    second = staff_client.get(URL)
    assert first.status_code == 200
    html = first.content.decode()
    for name in ("username", "points", "reason", "category", "public", "staff_note"):
        assert f'name="{name}"' in html
    assert 'hx-post="/staff/awards/new"' in html
    assert key_in(html) != key_in(second.content.decode())
    assert first["Content-Security-Policy"]


def test_page_prefills_member_from_query(staff_client, member):
    response = staff_client.get(URL, {"username": member.username})
    assert f'value="{member.username}"' in response.content.decode()


def test_htmx_grant_returns_emptied_form_status_and_event(staff_client, member, htmx_headers):
    response = staff_client.post(URL, form_data(member.username), headers=htmx_headers)
    assert response.status_code == 200
    award = Award.objects.get()
    assert (award.recipient, award.points, award.category) == (member, 500, "event")
    assert award.source == "form"
    assert award.public
    assert award.staff_note == "Paid for the pizza too"
    assert award.granted_by.username == "warden"
    assert award.idempotency_key == "form-test-key-1"
    html = response.content.decode()
    assert 'id="grant-form"' in html
    assert "<html" not in html
    assert 'role="status"' in html
    assert f"Granted 500 points to {member.username}" in html
    assert "Total now 500" in html
    assert key_in(html) != "form-test-key-1"
    assert f'value="{member.username}"' not in html  # the form is emptied
    assert json.loads(response["HX-Trigger"]) == {
        "award-granted": {"award_id": award.pk, "username": member.username}
    }
    assert UserScore.objects.get(member=member).total_score == 500


def test_htmx_grant_from_member_page_keeps_the_member(staff_client, member, htmx_headers):
    data = form_data(member.username, keep_member="True")
    response = staff_client.post(URL, data, headers=htmx_headers)
    assert response.status_code == 200
    assert f'value="{member.username}"' in response.content.decode()


def test_double_submit_grants_once_and_says_already_granted(staff_client, member, htmx_headers):
    data = form_data(member.username)
    staff_client.post(URL, data, headers=htmx_headers)
    again = staff_client.post(URL, data, headers=htmx_headers)
    assert again.status_code == 200
    assert "Already granted" in again.content.decode()
    assert "HX-Trigger" not in again
    assert Award.objects.count() == 1
    assert UserScore.objects.get(member=member).total_score == 500


def test_same_key_with_other_points_is_refused_and_a_new_key_offered(
    staff_client, member, htmx_headers
):
    staff_client.post(URL, form_data(member.username), headers=htmx_headers)
    response = staff_client.post(
        URL, form_data(member.username, points="900"), headers=htmx_headers
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "already used" in html
    assert key_in(html) != "form-test-key-1"
    assert list(Award.objects.values_list("points", flat=True)) == [500]


def test_plain_post_redirects_to_member_page_with_message(staff_client, member):
    response = staff_client.post(URL, form_data(member.username))
    assert response.status_code == 302
    assert response["Location"] == f"/staff/members/{member.username}/"
    page = staff_client.get(response["Location"])
    assert f"Granted 500 points to {member.username}" in page.content.decode()
    assert Award.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"points": "0"}, "points", "greater than or equal to 1"),
        ({"points": "100001"}, "points", "At most 100,000 points"),
        ({"points": "ten"}, "points", "Enter a whole number"),
        ({"reason": "ok"}, "reason", "at least 3 characters"),
        ({"reason": "x" * 501}, "reason", "at most 500 characters"),
        ({"username": "nobody-here"}, "username", "No member is called"),
        ({"category": "bribery"}, "category", "Select a valid choice"),
        ({"idempotency_key": ""}, "idempotency_key", "required"),
    ],
)
def test_invalid_htmx_post_is_422_fragment_with_error_beside_field(
    staff_client, member, htmx_headers, overrides, field, message
):
    response = staff_client.post(URL, form_data(member.username, **overrides), headers=htmx_headers)
    assert response.status_code == 422
    html = response.content.decode()
    assert "<html" not in html
    assert message in html
    if field != "idempotency_key":
        # The error list sits in the field's own wrapper and the input is marked invalid.
        wrapper = html.split(f'id="field-{field}"', 1)[1].split('id="field-', 1)[0]
        assert message in wrapper
        assert 'aria-invalid="true"' in wrapper
    assert not Award.objects.exists()


def test_invalid_plain_post_renders_page_with_errors(staff_client, member):
    response = staff_client.post(URL, form_data(member.username, points="-5"))
    assert response.status_code == 422
    assert "<html" in response.content.decode()
    assert not Award.objects.exists()


def test_granting_to_oneself_is_refused_beside_the_member_field(staff_client, htmx_headers):
    response = staff_client.post(URL, form_data("warden"), headers=htmx_headers)
    assert response.status_code == 422
    wrapper = response.content.decode().split('id="field-username"', 1)[1]
    assert "Nobody can grant an award to themselves" in wrapper.split('id="field-', 1)[0]
    assert not Award.objects.exists()


def test_grant_reaching_a_tier_says_so(staff_client, staff_user, htmx_headers):
    member = UserFactory(username="bogwalker")
    award_grant(
        recipient=member,
        points=19_900,
        reason="Earlier work",
        idempotency_key="earlier",
        granted_by=staff_user,
        source="form",
    )
    data = form_data("bogwalker", points="200")
    response = staff_client.post(URL, data, headers=htmx_headers)
    assert response.status_code == 200
    assert "tier Murk Lurker" in response.content.decode()
    assert TierChange.objects.filter(member=member, to_tier=2, cause="award").count() == 1


def test_csrf_is_enforced(staff_user, member):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.post(URL, form_data(member.username), headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert not Award.objects.exists()
    page = client.get(URL)
    token = page.cookies["csrftoken"].value
    ok = client.post(
        URL, form_data(member.username), headers={"HX-Request": "true", "X-CSRFToken": token}
    )
    assert ok.status_code == 200
    assert Award.objects.count() == 1


def test_anonymous_is_sent_to_login_and_htmx_gets_a_full_page_redirect(client, member):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/staff/awards/new")
    htmx = client.post(URL, form_data(member.username), headers={"HX-Request": "true"})
    assert htmx.status_code == 200
    assert htmx["HX-Redirect"].startswith("/accounts/login/")
    assert not Award.objects.exists()


def test_htmx_login_redirect_returns_to_the_page_not_the_fragment_endpoint(client, member):
    headers = {
        "HX-Request": "true",
        "HX-Target": "field-points",
        "HX-Current-URL": f"http://testserver/staff/members/{member.username}/?tab=1",
    }
    response = client.post("/staff/awards/validate", {"points": "5"}, headers=headers)
    assert response["HX-Redirect"] == (
        f"/accounts/login/?next=/staff/members/{member.username}/%3Ftab%3D1"
    )
    foreign = {**headers, "HX-Current-URL": "https://elsewhere.example/phish"}
    response = client.post("/staff/awards/validate", {"points": "5"}, headers=foreign)
    assert response["HX-Redirect"] == "/accounts/login/?next=/staff/awards/validate"


def test_staff_without_grant_permission_gets_403(client, member):
    viewer = UserFactory(username="viewer", staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_award"))
    client.force_login(viewer)
    assert client.get(URL).status_code == 403
    assert client.post(URL, form_data(member.username)).status_code == 403
    assert client.get("/staff/awards/preview", {"username": member.username}).status_code == 403
    assert not Award.objects.exists()


def test_member_who_is_not_staff_gets_403(client, member):
    other = UserFactory()
    other.user_permissions.add(Permission.objects.get(codename="add_award"))
    client.force_login(other)
    assert client.get(URL).status_code == 403


# --- inline validation -----------------------------------------------------------------------


def test_validate_returns_one_field_with_its_error(staff_client, member, htmx_headers):
    headers = {**htmx_headers, "HX-Target": "field-points"}
    response = staff_client.post(
        "/staff/awards/validate", form_data(member.username, points="0"), headers=headers
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert html.strip().startswith('<div class="field field-invalid" id="field-points"')
    assert "greater than or equal to 1" in html
    assert 'id="field-reason"' not in html


def test_validate_a_good_field_clears_its_error(staff_client, member, htmx_headers):
    headers = {**htmx_headers, "HX-Target": "field-username"}
    response = staff_client.post(
        "/staff/awards/validate", form_data(member.username, points="0"), headers=headers
    )
    assert response.status_code == 200
    assert "errorlist" not in response.content.decode()


def test_validate_waits_for_submit_before_saying_required(staff_client, htmx_headers):
    headers = {**htmx_headers, "HX-Target": "field-reason"}
    response = staff_client.post("/staff/awards/validate", {"reason": ""}, headers=headers)
    assert response.status_code == 200
    assert "This field is required" not in response.content.decode()
    assert "errorlist" not in response.content.decode()


def test_validate_refuses_unknown_fields_and_plain_requests(staff_client, htmx_headers):
    headers = {**htmx_headers, "HX-Target": "field-idempotency_key"}
    assert staff_client.post("/staff/awards/validate", {}, headers=headers).status_code == 400
    assert staff_client.post("/staff/awards/validate", {}).status_code == 400


# --- preview and search ----------------------------------------------------------------------


def test_preview_shows_current_and_new_total_and_tier(staff_client, htmx_headers):
    member = UserFactory(username="mirewalker")
    UserScoreFactory(member=member, activity_score=59_000, award_points=500)
    response = staff_client.get(
        "/staff/awards/preview", {"username": "mirewalker", "points": "1000"}, headers=htmx_headers
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "59,500" in html
    assert "60,500" in html
    assert "Reaches <strong>Mire Walker</strong>" in html
    assert "<html" not in html


def test_preview_without_a_tier_change_and_with_bad_input(staff_client, member):
    ok = staff_client.get("/staff/awards/preview", {"username": member.username, "points": "5"})
    assert "Stays Sludge Whelp" in ok.content.decode()
    bad = staff_client.get("/staff/awards/preview", {"username": "ghost", "points": "5"})
    assert bad.status_code == 200
    assert "Choose a member and points" in bad.content.decode()


def test_preview_for_oneself_warns(staff_client):
    response = staff_client.get("/staff/awards/preview", {"username": "warden", "points": "5"})
    assert "cannot grant points to yourself" in response.content.decode()


def test_member_search_lists_prefix_matches_first_as_buttons(staff_client, htmx_headers):
    for name in ("bogwalker", "bogrunner", "deepbog", "heron"):
        UserFactory(username=name)
    response = staff_client.get("/staff/members/search", {"username": "bog"}, headers=htmx_headers)
    assert response.status_code == 200
    html = response.content.decode()
    names = re.findall(r'data-pick-username="([^"]+)"', html)
    assert names == ["bogrunner", "bogwalker", "deepbog"]
    assert '<button type="button"' in html
    empty = staff_client.get("/staff/members/search", {"username": "zzz"}, headers=htmx_headers)
    assert "No member matches" in empty.content.decode()


def test_member_search_query_count_does_not_grow_with_matches(
    staff_client, django_assert_max_num_queries
):
    for index in range(8):
        user = UserFactory(username=f"fen{index}")
        UserScoreFactory(member=user, activity_score=index * 100)
    with django_assert_max_num_queries(4):
        response = staff_client.get("/staff/members/search", {"username": "fen"})
    assert len(re.findall("data-pick-username", response.content.decode())) == 8


def test_recent_awards_panel_reloads_on_its_own(staff_client, member, htmx_headers):
    AwardFactory(recipient=member, reason="Fixed the bog bridge")
    headers = {**htmx_headers, "HX-Target": "recent-awards"}
    response = staff_client.get(URL, headers=headers)
    html = response.content.decode()
    assert html.strip().startswith('<section id="recent-awards"')
    assert "Fixed the bog bridge" in html
