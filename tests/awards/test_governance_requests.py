"""Four-eyes approval: grants above AWARD_APPROVAL_THRESHOLD become requests (SPEC §10)."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from awards.models import Award, AwardRequest
from awards.request_decisions import award_request_approve, award_requests_expire
from awards.requests import award_grant_or_request
from awards.tasks import award_requests_expire_task
from scoring.consumer import events_consume
from scoring.models import MemberMetrics, TelemetryEvent, UserScore
from tests import cli_wire as wire
from tests.awards.conftest import staff_with
from tests.cli_wire import ingest_post
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

REQUESTS = "/staff/awards/requests/"


@pytest.fixture
def ada(db):
    return UserFactory(username="ada")


def points_of(member) -> int:
    metrics = MemberMetrics.objects.filter(member=member).first()
    return metrics.award_points if metrics else 0


def form_data(username="ada", points=25_000, key="form-key-1", **extra):
    data = {
        "username": username,
        "points": str(points),
        "reason": "Ran the swamp meetup",
        "category": "event",
        "public": "on",
        "staff_note": "",
        "idempotency_key": key,
    }
    data.update(extra)
    return data


def request_for(recipient, requester, *, points=25_000, key="k-1", **extra) -> AwardRequest:
    result = award_grant_or_request(
        recipient=recipient,
        points=points,
        reason="Ran the swamp meetup",
        idempotency_key=key,
        granted_by=requester,
        source="form",
        **extra,
    )
    assert result.request is not None
    return result.request


def test_settings_are_read_from_the_environment_with_the_spec_defaults():
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'swampclub.settings');"
        "django.setup(); from django.conf import settings as s;"
        "print(s.AWARD_APPROVAL_THRESHOLD, s.AWARD_GRANTER_BUDGET, s.AWARD_REQUEST_TTL_DAYS)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWARD_")}
    defaults = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert defaults.stdout.split() == ["10000", "50000", "14"]
    env.update(AWARD_APPROVAL_THRESHOLD="500", AWARD_GRANTER_BUDGET="7000")
    custom = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert custom.stdout.split()[:2] == ["500", "7000"]


# --- the form -------------------------------------------------------------------------------


def test_form_grant_above_the_threshold_creates_a_request_and_no_points(
    governance, client, requester, ada
):
    client.force_login(requester)
    response = client.post("/staff/awards/new", form_data(), headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "Sent for approval" in response.content.decode()
    # Nothing was granted: the request panels refresh, the award panels need not.
    assert json.loads(response["HX-Trigger"]).keys() == {"award-requested"}
    assert Award.objects.count() == 0
    assert points_of(ada) == 0
    request = AwardRequest.objects.get()
    assert (request.recipient, request.points, request.requested_by) == (ada, 25_000, requester)
    assert request.state == "pending"
    assert request.expires_at - request.created_at == timedelta(days=14)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.member) == ("award.request", requester, ada)


def test_a_grant_at_the_threshold_is_granted_at_once(governance, client, requester, ada):
    client.force_login(requester)
    response = client.post("/staff/awards/new", form_data(points=10_000))
    assert response.status_code == 302
    assert AwardRequest.objects.count() == 0
    assert points_of(ada) == 10_000


def test_double_submit_makes_one_request(governance, client, requester, ada):
    client.force_login(requester)
    client.post("/staff/awards/new", form_data())
    response = client.post("/staff/awards/new", form_data(), headers={"HX-Request": "true"})
    assert "Already requested" in response.content.decode()
    assert AwardRequest.objects.count() == 1


def test_same_key_with_other_points_is_a_form_error(governance, client, requester, ada):
    client.force_login(requester)
    client.post("/staff/awards/new", form_data())
    response = client.post("/staff/awards/new", form_data(points=30_000))
    assert response.status_code == 422
    assert "already used for award request" in response.content.decode()
    assert AwardRequest.objects.get().points == 25_000


# --- approve and reject ---------------------------------------------------------------------


def test_approval_grants_once_and_updates_total_and_tier(
    governance, client, requester, approver, ada
):
    request = request_for(ada, requester)
    client.force_login(approver)
    response = client.post(f"{REQUESTS}{request.pk}/approve")
    assert response.status_code == 302
    award = Award.objects.get()
    assert (award.recipient, award.points, award.granted_by) == (ada, 25_000, requester)
    assert award.idempotency_key == request.idempotency_key
    assert points_of(ada) == 25_000
    score = UserScore.objects.get(member=ada)
    assert (score.total_score, score.tier) == (25_000, 2)
    request.refresh_from_db()
    assert (request.state, request.decided_by, request.award) == ("approved", approver, award)
    # Approving again grants nothing more.
    again = client.post(f"{REQUESTS}{request.pk}/approve", headers={"HX-Request": "true"})
    assert again.status_code == 200
    assert "Already approved" in again.content.decode()
    assert Award.objects.count() == 1
    assert points_of(ada) == 25_000
    assert list(AuditEntry.objects.filter(action="request.approve").values_list("actor", flat=True))


def test_the_requester_cannot_approve_their_own_request(governance, client, ada):
    requester = staff_with("selfish", "add_award", "approve_award")
    request = request_for(ada, requester)
    client.force_login(requester)
    assert client.post(f"{REQUESTS}{request.pk}/approve").status_code == 403
    assert client.post(f"{REQUESTS}{request.pk}/reject", {"reason": "mine"}).status_code == 403
    assert Award.objects.count() == 0
    assert AwardRequest.objects.get().state == "pending"


def test_the_recipient_cannot_approve_a_request_for_themselves(governance, client, requester):
    recipient = staff_with("lucky", "approve_award")
    request = request_for(recipient, requester)
    client.force_login(recipient)
    assert client.post(f"{REQUESTS}{request.pk}/approve").status_code == 403
    assert Award.objects.count() == 0


def test_approval_needs_the_permission(governance, client, requester, ada):
    request = request_for(ada, requester)
    client.force_login(staff_with("clerk", "add_award"))
    assert client.post(f"{REQUESTS}{request.pk}/approve").status_code == 403
    assert Award.objects.count() == 0


def test_reject_with_a_reason_grants_nothing_and_cannot_then_be_approved(
    governance, client, requester, approver, ada
):
    request = request_for(ada, requester)
    client.force_login(approver)
    refused = client.post(f"{REQUESTS}{request.pk}/reject", {"reason": ""})
    assert refused.status_code == 422
    assert AwardRequest.objects.get().state == "pending"
    response = client.post(f"{REQUESTS}{request.pk}/reject", {"reason": "Not a meetup"})
    assert response.status_code == 302
    request.refresh_from_db()
    assert (request.state, request.decision_reason) == ("rejected", "Not a meetup")
    assert client.post(f"{REQUESTS}{request.pk}/approve").status_code == 409
    assert Award.objects.count() == 0
    assert points_of(ada) == 0


def test_an_expired_request_cannot_be_approved(governance, client, requester, approver, ada):
    request = request_for(ada, requester)
    AwardRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    client.force_login(approver)
    response = client.post(f"{REQUESTS}{request.pk}/approve")
    assert response.status_code == 409
    assert "expired" in response.content.decode()
    assert Award.objects.count() == 0
    listed = client.get(REQUESTS, {"format": "json"}).json()["requests"]
    assert [r["state"] for r in listed] == ["expired"]
    # The sweep stores what the reads already showed.
    assert award_requests_expire_task.name == "awards.award_requests_expire"
    assert award_requests_expire() == 1
    assert AwardRequest.objects.get().state == "expired"


def test_request_expires_after_the_ttl(governance, requester, ada):
    governance.AWARD_REQUEST_TTL_DAYS = 3
    request = request_for(ada, requester)
    assert request.expires_at - request.created_at == timedelta(days=3)
    assert award_requests_expire(now=timezone.now() + timedelta(days=2)) == 0
    assert award_requests_expire(now=timezone.now() + timedelta(days=3, seconds=1)) == 1


def test_requests_json_has_the_spec_shape(governance, client, requester, approver, ada):
    first = request_for(ada, requester, key="k-1")
    second = request_for(ada, requester, key="k-2", points=20_000)
    award_request_approve(request_id=second.pk, approver=approver)
    client.force_login(approver)
    body = client.get(REQUESTS, {"format": "json"}).json()
    assert [
        {k: r[k] for k in ("id", "username", "points", "reason", "requested_by", "state")}
        for r in body["requests"]
    ] == [
        {
            "id": second.pk,
            "username": "ada",
            "points": 20_000,
            "reason": "Ran the swamp meetup",
            "requested_by": "requester",
            "state": "approved",
        },
        {
            "id": first.pk,
            "username": "ada",
            "points": 25_000,
            "reason": "Ran the swamp meetup",
            "requested_by": "requester",
            "state": "pending",
        },
    ]
    pending = client.get(REQUESTS, {"format": "json", "state": "pending"}).json()
    assert [r["id"] for r in pending["requests"]] == [first.pk]


def test_requests_page_previews_the_total_and_shows_my_outcomes(
    governance, client, requester, approver, ada
):
    request = request_for(ada, requester, points=25_000)
    client.force_login(approver)
    page = client.get(REQUESTS).content.decode()
    assert "0 → <strong>25,000</strong>, Murk Lurker" in page
    assert f'action="{REQUESTS}{request.pk}/approve"' in page
    client.post(f"{REQUESTS}{request.pk}/reject", {"reason": "Wrong member"})
    client.force_login(requester)
    mine = client.get(REQUESTS).content.decode()
    assert "My requests" in mine
    assert "Wrong member" in mine
    # The requester is shown no buttons for their own request.
    assert f'action="{REQUESTS}{request.pk}/approve"' not in mine


def test_private_reason_is_hidden_from_staff_without_view_award(governance, client, requester, ada):
    request_for(ada, requester, public=False)
    client.force_login(staff_with("viewer", "approve_award"))
    (row,) = client.get(REQUESTS, {"format": "json"}).json()["requests"]
    assert row["reason"] is None


def test_dashboard_lists_pending_requests_with_the_preview(governance, client, requester, ada):
    request_for(ada, requester, points=25_000)
    client.force_login(staff_with("viewer", "approve_award"))
    panel = client.get("/staff/governance").content.decode()
    assert "ada" in panel
    assert "25,000" in panel
    assert "Murk Lurker" in panel


# --- award events ---------------------------------------------------------------------------


def award_event(points=25_000, insert_id="evt-1", award_id="gh-1"):
    return wire.award_event(
        points=points,
        reason="Shipped the plugin",
        award_id=award_id,
        insert_id=insert_id,
        timestamp="2026-11-24T10:15:00Z",
    )


post = ingest_post


@pytest.fixture
def bot_key(requester):
    from scoring.apikeys import api_key_create

    return api_key_create(owner=requester, scopes=["award"], name="bot")[1]


def test_award_event_above_threshold_answers_pending_approval_and_is_listed(
    governance, client, bot_key, approver, ada
):
    response = post(client, bot_key, award_event())
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0, "pending_approval": 1}
    client.force_login(approver)
    (row,) = client.get(REQUESTS, {"format": "json"}).json()["requests"]
    assert (row["username"], row["points"], row["requested_by"], row["state"]) == (
        "ada",
        25_000,
        "requester",
        "pending",
    )
    # The consumer finds the request and grants nothing.
    events_consume()
    assert TelemetryEvent.objects.get().status == "processed"
    assert Award.objects.count() == 0
    assert points_of(ada) == 0
    # Approval grants it, through the same key.
    award_request_approve(request_id=row["id"], approver=approver)
    assert Award.objects.get().idempotency_key == "gh-1"
    assert points_of(ada) == 25_000


def test_replayed_award_event_never_makes_a_second_request(governance, client, bot_key, ada):
    post(client, bot_key, award_event())
    replay = post(client, bot_key, award_event())
    assert replay.json() == {"accepted": 0, "duplicates": 1, "pending_approval": 1}
    fresh_id = post(client, bot_key, award_event(insert_id="evt-2"))
    assert fresh_id.json()["pending_approval"] == 1
    events_consume()
    assert AwardRequest.objects.count() == 1
    assert Award.objects.count() == 0


def test_mixed_batch_grants_small_and_requests_big(governance, client, bot_key, ada):
    batch = {
        "events": [
            award_event(points=500, insert_id="a", award_id="small"),
            award_event(points=20_000, insert_id="b", award_id="big"),
        ]
    }
    assert post(client, bot_key, batch).json()["pending_approval"] == 1
    events_consume()
    assert list(Award.objects.values_list("points", flat=True)) == [500]
    assert list(AwardRequest.objects.values_list("points", flat=True)) == [20_000]
    assert points_of(ada) == 500


def test_consumer_turns_an_old_queued_big_event_into_a_request(governance, requester, ada):
    # An event accepted before approval applied (or while the threshold was higher).
    from tests.factories import TelemetryEventFactory

    TelemetryEventFactory(
        member=requester,
        event="award",
        properties={"username": "ada", "points": 30_000, "reason": "Old", "awardId": "old-1"},
    )
    events_consume()
    assert Award.objects.count() == 0
    request = AwardRequest.objects.get()
    assert (request.points, request.source, request.requested_by) == (30_000, "api", requester)
    assert AuditEntry.objects.filter(action="award.request").count() == 1


# --- bulk -----------------------------------------------------------------------------------


def test_bulk_rows_above_threshold_become_requests(governance, client, requester, ada):
    UserFactory(username="bea")
    client.force_login(requester)
    csv = "username,points,reason\nada,20000,Organised the summit\nbea,300,Helped out\n"
    from django.core.files.uploadedfile import SimpleUploadedFile

    dry = client.post("/staff/awards/bulk", {"file": SimpleUploadedFile("f.csv", csv.encode())})
    assert "becomes an award request" in dry.content.decode()
    assert AwardRequest.objects.count() == 0
    response = client.post(
        "/staff/awards/bulk",
        {"file": SimpleUploadedFile("f.csv", csv.encode()), "confirm": "1"},
    )
    assert response.status_code == 302
    assert list(Award.objects.values_list("recipient__username", flat=True)) == ["bea"]
    request = AwardRequest.objects.get()
    assert (request.recipient, request.points, request.source) == (ada, 20_000, "bulk")
    job_page = client.get(response["Location"]).content.decode()
    assert "1 sent for approval" in job_page
    assert points_of(ada) == 0
