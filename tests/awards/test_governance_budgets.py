"""Granter budgets: at most AWARD_GRANTER_BUDGET points per granter per rolling 30 days."""

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from awards.budgets import BudgetExceeded, budget_get, budget_override_set
from awards.models import Award, AwardRequest
from awards.request_decisions import award_request_reject
from awards.requests import award_grant_or_request
from scoring.apikeys import api_key_create
from scoring.consumer import events_consume
from scoring.models import TelemetryEvent
from tests import cli_wire as wire
from tests.awards.conftest import staff_with
from tests.cli_wire import ingest_post
from tests.factories import AwardFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def members(db):
    return [UserFactory(username=f"m{i}") for i in range(6)]


def grant(granter, recipient, points, key, **kwargs):
    return award_grant_or_request(
        recipient=recipient,
        points=points,
        reason="Helped at the swamp fair",
        idempotency_key=key,
        granted_by=granter,
        source="form",
        **kwargs,
    )


def form_data(username, points, key):
    return {
        "username": username,
        "points": str(points),
        "reason": "Helped at the swamp fair",
        "category": "event",
        "public": "on",
        "idempotency_key": key,
    }


def test_grants_up_to_the_budget_then_refuses_naming_what_remains(governance, requester, members):
    for index in range(4):
        grant(requester, members[index], 10_000, f"k{index}")
    assert budget_get(granter=requester).remaining == 10_000
    with pytest.raises(BudgetExceeded) as refused:
        grant(requester, members[4], 10_001 - 1 + 2, "k4")  # 10,002 > 10,000 left
    assert refused.value.remaining == 10_000
    assert "10,000 of 50,000 points remain" in refused.value.message_dict["points"][0]
    assert Award.objects.count() == 4
    grant(requester, members[4], 10_000, "k5")
    assert budget_get(granter=requester).remaining == 0


def test_form_over_budget_is_an_error_beside_points_and_grants_nothing(
    governance, client, requester, members
):
    for index in range(5):
        grant(requester, members[index], 9_000, f"k{index}")
    client.force_login(requester)
    page = client.get("/staff/awards/new").content.decode()
    assert "<strong>5,000</strong> of 50,000 points left" in page
    response = client.post(
        "/staff/awards/new", form_data("m5", 6_000, "form-1"), headers={"HX-Request": "true"}
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "Over your grant budget" in html
    assert "5,000 of 50,000 points remain" in html
    # Beside the points field: inside its wrapper, before the next field.
    points_field = html.split('id="field-points"', 1)[1].split('id="field-reason"', 1)[0]
    assert "Over your grant budget" in points_field
    assert Award.objects.count() == 5


def test_a_repeat_of_a_granted_key_spends_nothing(governance, requester, members):
    for index in range(5):
        grant(requester, members[index], 10_000, f"k{index}")
    again = grant(requester, members[0], 10_000, "k0")
    assert again.created is False


def test_pending_requests_hold_budget_until_rejected(governance, requester, approver, members):
    request = grant(requester, members[0], 40_000, "big").request
    assert budget_get(granter=requester).remaining == 10_000
    with pytest.raises(BudgetExceeded):
        grant(requester, members[1], 10_001 - 1 + 1, "small")  # 10,001
    award_request_reject(request_id=request.pk, rejecter=approver, reason="Too much")
    assert budget_get(granter=requester).remaining == 50_000


def test_the_window_is_rolling_and_revocations_do_not_refund(governance, requester, members):
    old = AwardFactory(recipient=members[0], granted_by=requester, points=45_000)
    Award.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))
    recent = AwardFactory(recipient=members[1], granted_by=requester, points=30_000)
    from awards.services import award_revoke

    award_revoke(award=recent, revoked_by=requester, reason="Mistake")
    assert budget_get(granter=requester).used == 30_000


def test_superuser_overrides_a_granters_budget(governance, requester, members):
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    with pytest.raises(PermissionDenied):
        budget_override_set(granter=requester, points=1, by=staff_with("clerk", "add_award"))
    budget_override_set(granter=requester, points=100_000, by=boss)
    assert budget_get(granter=requester).limit == 100_000
    grant(requester, members[0], 9_000, "a")
    assert budget_get(granter=requester).remaining == 91_000
    budget_override_set(granter=requester, points=None, by=boss)
    assert budget_get(granter=requester).limit == 50_000


def test_budget_page_sets_an_override_for_superusers_only(governance, client, requester):
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    client.force_login(requester)
    url = f"/staff/awards/budgets/{requester.username}"
    assert client.post(url, {"points": "5"}).status_code == 403
    client.force_login(boss)
    assert client.post(url, {"points": "75000"}).status_code == 302
    assert budget_get(granter=requester).limit == 75_000
    assert "75,000" in client.get("/staff/awards/budgets/").content.decode()


def test_superusers_are_held_to_the_budget_unless_a_setting_exempts_them(governance, members):
    boss = UserFactory(username="boss", is_staff=True, is_superuser=True)
    grant(boss, members[0], 10_000, "a")
    assert budget_get(granter=boss).remaining == 40_000
    governance.AWARD_BUDGET_EXEMPT_SUPERUSERS = True
    assert budget_get(granter=boss).remaining is None
    for index in range(1, 6):
        grant(boss, members[index], 10_000, f"b{index}")
    assert Award.objects.filter(granted_by=boss).count() == 6


# --- ingest ---------------------------------------------------------------------------------


def award_event(username, points, award_id, insert_id=None):
    return wire.award_event(
        username,
        points=points,
        reason="Shipped it",
        award_id=award_id,
        insert_id=insert_id or award_id,
        distinct_id="bot",
    )


post = ingest_post


@pytest.fixture
def bot_key(requester):
    return api_key_create(owner=requester, scopes=["award"], name="bot")[1]


def test_ingest_over_budget_is_422_naming_points_and_stores_nothing(
    governance, client, bot_key, members
):
    batch = {"events": [award_event(f"m{i}", 9_000, f"a{i}") for i in range(6)]}
    response = post(client, bot_key, batch)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid_events"
    assert [(e["index"], e["field"]) for e in body["errors"]] == [(5, "properties.points")]
    assert "50,000 points remain" in body["errors"][0]["message"]
    assert TelemetryEvent.objects.count() == 0
    assert AwardRequest.objects.count() == 0


def test_queued_award_events_count_against_the_budget(governance, client, bot_key, members):
    first = {"events": [award_event(f"m{i}", 9_000, f"a{i}") for i in range(5)]}
    assert post(client, bot_key, first).status_code == 202
    # Not consumed yet: the 45,000 queued points still count.
    refused = post(client, bot_key, award_event("m5", 6_000, "a5"))
    assert refused.status_code == 422
    events_consume()
    assert post(client, bot_key, award_event("m5", 6_000, "a5")).status_code == 422
    assert post(client, bot_key, award_event("m5", 5_000, "a6")).status_code == 202


def test_replays_at_ingest_never_spend_budget_twice(governance, client, bot_key, members):
    batch = {"events": [award_event(f"m{i}", 10_000, f"a{i}") for i in range(5)]}
    assert post(client, bot_key, batch).status_code == 202
    # The same events again (same insert_ids), and with fresh insert_ids: still 202.
    assert post(client, bot_key, batch).json() == {"accepted": 0, "duplicates": 5}
    resent = {
        "events": [award_event(f"m{i}", 10_000, f"a{i}", insert_id=f"r{i}") for i in range(5)]
    }
    assert post(client, bot_key, resent).status_code == 202
    events_consume()
    assert Award.objects.count() == 5
    assert post(client, bot_key, batch).status_code == 202


# --- bulk -----------------------------------------------------------------------------------


def test_bulk_dry_run_over_budget_is_refused_naming_the_remaining(
    governance, client, requester, members
):
    grant(requester, members[0], 10_000, "earlier")
    client.force_login(requester)
    rows = "".join(f"m{i},9000,Fair helper\n" for i in range(1, 6))
    upload = SimpleUploadedFile("fair.csv", ("username,points,reason\n" + rows).encode())
    response = client.post("/staff/awards/bulk", {"file": upload})
    html = response.content.decode()
    assert "Over your grant budget: 45,000 points asked, 40,000 of 50,000" in html
    assert "Grant 5 awards" not in html  # no confirm button
    confirm = client.post(
        "/staff/awards/bulk",
        {
            "file": SimpleUploadedFile("fair.csv", ("username,points,reason\n" + rows).encode()),
            "confirm": "1",
        },
    )
    assert confirm.status_code == 422
    assert Award.objects.count() == 1


def test_bulk_job_fails_when_the_budget_was_spent_after_the_dry_run(
    governance, client, requester, members
):
    from awards.bulk import bulk_dry_run, bulk_job_confirm

    rows = "".join(f"m{i},9000,Fair helper\n" for i in range(1, 5))
    report = bulk_dry_run(raw=rows.encode(), filename="f.csv", uploaded_by=requester)
    assert report.ok
    grant(requester, members[0], 20_000 - 1, "meanwhile")  # a request: holds 19,999
    job = bulk_job_confirm(token=report.job.token, user=requester)
    assert job.status == "failed"
    assert "Over your grant budget" in job.error
    assert Award.objects.count() == 0
