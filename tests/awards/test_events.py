"""The ``award`` event end to end: ingest checks (400/403/409), the consumer's handler,
replays, crashes and retries — an award counts exactly once whichever way it arrives."""

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from django.db import OperationalError, connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from awards import event_payload, services
from awards.models import Award
from scoring.consumer import events_consume
from scoring.models import MemberMetrics, MetricsSnapshot, TelemetryEvent, UserScore
from scoring.registry import event_type_get, event_type_register
from tests import cli_wire as wire
from tests.cli_wire import ingest_post
from tests.factories import TelemetryEventFactory, UserFactory

pytestmark = pytest.mark.django_db

TIMESTAMP = "2026-11-24T10:15:00.250Z"


@pytest.fixture
def ada(db):
    """The recipient of the awards in these tests."""
    return UserFactory(username="ada")


def award_event(username="ada", *, insert_id=None, timestamp=TIMESTAMP, **properties):
    """An award event as an API client sends it, dated ``TIMESTAMP`` unless told otherwise
    (``tests.cli_wire.award_event``: ``None`` values are left out)."""
    return wire.award_event(username, insert_id=insert_id, timestamp=timestamp, **properties)


post = ingest_post


def points_of(member) -> int:
    metrics = MemberMetrics.objects.filter(member=member).first()
    return metrics.award_points if metrics else 0


# --- accepted and granted ------------------------------------------------------------------


def test_award_event_is_granted_by_the_consumer(client, award_key, granter, ada):
    _, key = award_key
    body = award_event(awardId="gh-227", category="content", public=False, grantedBy="release bot")
    response = post(client, key, body)
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    # Ingest stores the event; only the consumer grants.
    assert not Award.objects.exists()

    assert events_consume() == 1

    award = Award.objects.get()
    assert (award.recipient, award.points, award.reason) == (ada, 250, "Fixed the install docs")
    assert (award.category, award.public, award.idempotency_key) == ("content", False, "gh-227")
    # The key's owner is the granter of record; grantedBy is only kept as text.
    assert (award.source, award.granted_by, award.granted_by_text) == (
        "api",
        granter,
        "release bot",
    )
    assert award.granted_at == datetime(2026, 11, 24, 10, 15, 0, 250000, tzinfo=UTC)
    event = TelemetryEvent.objects.get()
    assert (event.status, event.error, event.member) == ("processed", "", granter)
    assert points_of(ada) == 250
    assert UserScore.objects.get(member=ada).total_score == 250
    # The snapshot queue records the change too (the batch finds the score already right).
    assert MetricsSnapshot.objects.filter(member=ada).count() == 1


def test_bearer_key_and_batched_events_to_several_members(client, award_key, ada):
    _, key = award_key
    bob = UserFactory(username="bob")
    body = {
        "events": [
            award_event("ada", awardId="a1", points=10),
            award_event("bob", awardId="b1", points=20),
            award_event("ada", awardId="a2", points=30, reason="Second thing"),
        ]
    }
    response = client.post(
        "/ingest",
        data=json.dumps(body),
        content_type="application/json",
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 202
    assert events_consume() == 3
    assert (points_of(ada), points_of(bob)) == (40, 20)
    assert set(TelemetryEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_replayed_award_counts_once(client, award_key, ada):
    _, key = award_key
    first = award_event(insert_id="evt-1", awardId="meetup-42")
    assert post(client, key, first).json() == {"accepted": 1, "duplicates": 0}
    # The same envelope again: a duplicate insert_id, never stored twice.
    assert post(client, key, first).json() == {"accepted": 0, "duplicates": 1}
    events_consume()
    # A fresh insert_id with the same awardId: stored, but the award key counts once.
    assert post(client, key, award_event(insert_id="evt-2", awardId="meetup-42")).json() == {
        "accepted": 1,
        "duplicates": 0,
    }
    events_consume()

    assert Award.objects.count() == 1
    assert points_of(ada) == 250
    assert UserScore.objects.get(member=ada).total_score == 250
    assert list(TelemetryEvent.objects.order_by("id").values_list("insert_id", "status")) == [
        ("evt-1", "processed"),
        ("evt-2", "processed"),
    ]


def test_replay_in_the_same_batch_counts_once(client, award_key, ada):
    _, key = award_key
    post(client, key, award_event(insert_id="evt-1", awardId="k"))
    post(client, key, award_event(insert_id="evt-2", awardId="k"))
    assert events_consume() == 2
    assert Award.objects.count() == 1
    assert points_of(ada) == 250


def test_without_award_id_the_key_is_derived_from_reason_and_timestamp(client, award_key, ada):
    _, key = award_key
    post(client, key, award_event(insert_id="evt-1"))
    # The same instant written with another offset is the same award.
    post(client, key, award_event(insert_id="evt-2", timestamp="2026-11-24T12:15:00.250+02:00"))
    # Another timestamp is another award.
    post(client, key, award_event(insert_id="evt-3", timestamp="2026-11-25T09:00:00Z"))
    events_consume()

    keys = sorted(Award.objects.values_list("idempotency_key", flat=True))
    assert len(keys) == 2
    assert all(k.startswith("derived:") for k in keys)
    expected = event_payload.award_key_derive(
        reason="Fixed the install docs",
        timestamp=datetime(2026, 11, 24, 10, 15, 0, 250000, tzinfo=UTC),
    )
    assert expected in keys
    assert points_of(ada) == 500


def test_default_insert_id_dedupes_a_resent_award_at_ingest(client, award_key, ada):
    _, key = award_key
    assert post(client, key, award_event(awardId="gh-9")).json()["accepted"] == 1
    assert post(client, key, award_event(awardId="gh-9")).json() == {
        "accepted": 0,
        "duplicates": 1,
    }
    assert TelemetryEvent.objects.get().insert_id == "award:ada:gh-9"


def test_default_insert_id_is_hashed_when_too_long(award_key):
    api_key, _ = award_key
    event_type = event_type_get("award")
    insert_id = event_type.default_insert_id(award_event("ada", awardId="x" * 200), api_key)
    assert insert_id.startswith("award:")
    assert len(insert_id) <= 100
    again = event_type.default_insert_id(award_event("ada", awardId="x" * 200), api_key)
    assert insert_id == again


def test_ingest_queries_do_not_grow_with_award_events_for_the_same_members(client, award_key, ada):
    _, key = award_key
    UserFactory(username="bob")

    def queries_for(count: int, prefix: str) -> int:
        body = {
            "events": [
                award_event("ada" if n % 2 else "bob", awardId=f"{prefix}{n}") for n in range(count)
            ]
        }
        with CaptureQueriesContext(connection) as queries:
            assert post(client, key, body).status_code == 202
        return len(queries)

    queries_for(1, "warm-")  # the key's first use also records last_used_at
    assert queries_for(5, "small-") == queries_for(200, "large-")


# --- refused at ingest, nothing stored ---------------------------------------------------------


def test_award_event_with_an_ingest_only_key_is_forbidden(client, ingest_key, ada):
    _, key = ingest_key
    response = post(client, key, {"events": [award_event(awardId="a")]})
    assert response.status_code == 403
    assert response.json()["scope"] == "award"
    assert not TelemetryEvent.objects.exists()
    assert not Award.objects.exists()


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({"username": "nobody-here"}, "properties.username"),
        ({"username": None}, "properties.username"),
        ({"username": 7}, "properties.username"),
        ({"points": None}, "properties.points"),
        ({"points": "250"}, "properties.points"),
        ({"points": True}, "properties.points"),
        ({"points": 2.5}, "properties.points"),
        ({"points": 0}, "properties.points"),
        ({"points": 100_001}, "properties.points"),
        ({"reason": None}, "properties.reason"),
        ({"reason": "no"}, "properties.reason"),
        ({"reason": "r" * 501}, "properties.reason"),
        ({"category": "bribery"}, "properties.category"),
        ({"public": "yes"}, "properties.public"),
        ({"awardId": 12}, "properties.awardId"),
        ({"awardId": ""}, "properties.awardId"),
        ({"awardId": "k" * 201}, "properties.awardId"),
        ({"grantedBy": "g" * 201}, "properties.grantedBy"),
        ({"grantedBy": ["list"]}, "properties.grantedBy"),
    ],
)
def test_invalid_award_event_is_400_naming_the_field(client, award_key, ada, properties, field):
    _, key = award_key
    body = award_event(awardId="k1")
    body["properties"].update(properties)
    body = {"events": [award_event(awardId="fine"), body]}
    response = post(client, key, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {(1, field)}
    assert not TelemetryEvent.objects.exists()


def test_award_without_award_id_or_timestamp_is_400(client, award_key, ada):
    _, key = award_key
    response = post(client, key, award_event(timestamp=None))
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["properties.awardId"]
    assert not TelemetryEvent.objects.exists()


def test_unreadable_timestamp_is_reported_once(client, award_key, ada):
    _, key = award_key
    response = post(client, key, award_event(timestamp="yesterday"))
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["timestamp"]


@override_settings(AWARD_MAX_POINTS=1000)
def test_award_max_points_applies_to_events(client, award_key, ada):
    _, key = award_key
    assert post(client, key, award_event(awardId="a", points=1001)).status_code == 400
    assert post(client, key, award_event(awardId="a", points=1000)).status_code == 202


def test_an_inactive_member_is_not_an_existing_member(client, award_key):
    _, key = award_key
    UserFactory(username="gone", is_active=False)
    response = post(client, key, award_event("gone", awardId="a"))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "properties.username"


def test_the_key_owner_cannot_award_themselves(client, award_key, granter):
    _, key = award_key
    response = post(client, key, award_event(granter.username, awardId="a"))
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["field"] == "properties.username"
    assert "themselves" in error["message"]
    assert not TelemetryEvent.objects.exists()


def test_a_spoofed_username_never_changes_who_grants(client, award_key, granter, ada):
    # distinct_id and grantedBy claim to be ada; the granter is still the key's owner.
    _, key = award_key
    body = award_event("bob", awardId="a", grantedBy="ada")
    body["distinct_id"] = "ada"
    UserFactory(username="bob")
    assert post(client, key, body).status_code == 202
    events_consume()
    assert Award.objects.get().granted_by == granter


def test_a_key_used_with_different_points_is_409(client, award_key, ada, granter):
    _, key = award_key
    services.award_grant(
        recipient=ada,
        points=250,
        reason="Fixed the install docs",
        idempotency_key="gh-227",
        granted_by=granter,
        source="form",
    )
    response = post(client, key, award_event(awardId="gh-227", points=999))
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert "gh-227" in response.json()["message"]
    assert not TelemetryEvent.objects.exists()
    # The same payload is no conflict: accepted, and it counts once.
    assert post(client, key, award_event(awardId="gh-227")).status_code == 202
    events_consume()
    assert points_of(ada) == 250


def test_a_key_used_twice_in_one_request_with_different_reasons_is_409(client, award_key, ada):
    _, key = award_key
    body = {
        "events": [
            award_event(insert_id="e1", awardId="k"),
            award_event(insert_id="e2", awardId="k", reason="Something else"),
        ]
    }
    assert post(client, key, body).status_code == 409
    assert not TelemetryEvent.objects.exists()


def test_a_key_waiting_in_the_queue_with_different_points_is_409(client, award_key, ada):
    _, key = award_key
    assert post(client, key, award_event(insert_id="e1", awardId="k")).status_code == 202
    response = post(client, key, award_event(insert_id="e2", awardId="k", points=1))
    assert response.status_code == 409
    assert "waiting" in response.json()["message"]
    assert TelemetryEvent.objects.count() == 1


def test_the_same_key_for_another_member_is_no_conflict(client, award_key, ada):
    _, key = award_key
    UserFactory(username="bob")
    post(client, key, award_event("ada", awardId="k"))
    assert post(client, key, award_event("bob", awardId="k", points=5)).status_code == 202


# --- the consumer's handler ---------------------------------------------------------------


def stored_award_event(owner, *, insert_id, **properties):
    """An award event stored as if accepted by ingest (bypassing its checks)."""
    body = award_event(insert_id=insert_id, **properties)
    return TelemetryEventFactory(
        insert_id=insert_id,
        event="award",
        member=owner,
        timestamp=datetime(2026, 11, 24, 10, 15, tzinfo=UTC),
        properties=body["properties"],
    )


class WorkerKilled(BaseException):
    """Stands for the worker process dying (not an ``Exception``: nothing may catch it)."""


@pytest.fixture
def award_handler_dies_after_granting():
    """Make the ``award`` handler grant, then die before the consumer's batch commits."""
    real = event_type_get("award")
    granted = []

    def handle_then_die(events):
        real.handle(events)
        granted.append(Award.objects.count())
        raise WorkerKilled

    event_type_register(dataclasses.replace(real, handle=handle_then_die))
    # The test restarts the worker with the real handler by calling the second item.
    yield granted, lambda: event_type_register(real)
    event_type_register(real)


def test_consumer_crash_between_grant_and_marking_processed_counts_once(
    award_handler_dies_after_granting, granter, ada
):
    granted, restart_worker = award_handler_dies_after_granting
    event = stored_award_event(granter, insert_id="e1", awardId="k")

    with pytest.raises(WorkerKilled):
        events_consume()
    # The award was inserted and counted inside the batch...
    assert granted == [1]
    # ...and rolled back with it: no award, no points, the event still pending.
    assert not Award.objects.exists()
    assert points_of(ada) == 0
    event.refresh_from_db()
    assert event.status == "pending"

    restart_worker()
    assert events_consume() == 1
    assert events_consume() == 0  # nothing left: a second run changes nothing
    assert Award.objects.count() == 1
    assert points_of(ada) == 250
    assert UserScore.objects.get(member=ada).total_score == 250
    event.refresh_from_db()
    assert event.status == "processed"


def test_database_failure_inside_the_handler_leaves_the_event_pending(monkeypatch, granter, ada):
    event = stored_award_event(granter, insert_id="e1", awardId="k")
    calls = []

    def lost_connection(**kwargs):
        calls.append(kwargs)
        raise OperationalError("server closed the connection unexpectedly")

    # The award row is inserted before the score refresh fails.
    monkeypatch.setattr(services, "scores_refresh", lost_connection)
    with pytest.raises(OperationalError):
        events_consume()
    assert calls
    assert not Award.objects.exists()
    event.refresh_from_db()
    assert event.status == "pending"

    monkeypatch.undo()
    events_consume()
    assert Award.objects.count() == 1
    assert points_of(ada) == 250


def test_a_recipient_deactivated_after_ingest_is_rejected_without_blocking_others(granter, ada):
    gone = UserFactory(username="gone")
    bad = stored_award_event(granter, insert_id="e1", username="gone", awardId="k")
    good = stored_award_event(granter, insert_id="e2", awardId="k")
    gone.is_active = False
    gone.save()

    events_consume()

    bad.refresh_from_db()
    good.refresh_from_db()
    assert bad.status == "rejected"
    assert "properties.username" in bad.error
    assert good.status == "processed"
    assert points_of(ada) == 250


def test_conflicting_events_in_the_queue_first_wins_the_other_is_rejected(granter, ada):
    first = stored_award_event(granter, insert_id="e1", awardId="k", points=10)
    second = stored_award_event(granter, insert_id="e2", awardId="k", points=20)
    unknown = stored_award_event(granter, insert_id="e3", username="nobody", awardId="k")
    selfish = stored_award_event(granter, insert_id="e4", username="granter", awardId="k")

    events_consume()

    statuses = dict(TelemetryEvent.objects.values_list("insert_id", "status"))
    assert statuses == {"e1": "processed", "e2": "rejected", "e3": "rejected", "e4": "rejected"}
    for event in (first, second, unknown, selfish):
        event.refresh_from_db()
    assert "different points or reason" in second.error
    assert "no member" in unknown.error
    assert "themselves" in selfish.error
    assert Award.objects.get().points == 10
    assert points_of(ada) == 10


def test_handler_rejects_an_event_whose_stored_properties_are_invalid(granter, ada):
    event = stored_award_event(granter, insert_id="e1", awardId="k", points="lots")
    events_consume()
    event.refresh_from_db()
    assert event.status == "rejected"
    assert "properties.points" in event.error
    assert not Award.objects.exists()


def test_handler_grants_from_several_key_owners_with_few_queries(
    django_assert_max_num_queries, ada
):
    owners = UserFactory.create_batch(3, granter=True)
    events = [
        stored_award_event(owners[i % 3], insert_id=f"e{i}", awardId=f"k{i}", points=1)
        for i in range(30)
    ]
    handle = event_type_get("award").handle
    # Per granter: a savepoint, validation, the budget (row lock, window sum, audit entry),
    # insert, fetch, metrics (3), score refresh (~9); nothing per event.
    with django_assert_max_num_queries(75):
        result = handle(events)
    assert result.rejected == {}
    assert result.touched_member_ids == {ada.pk}
    assert points_of(ada) == 30
    assert set(Award.objects.values_list("granted_by", flat=True)) == {o.pk for o in owners}
