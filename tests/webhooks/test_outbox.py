"""The outbox: one event per fact, written in the fact's transaction, never a private detail."""

import pytest
from django.db import transaction
from django.utils import timezone

from awards.services import GrantSpec, award_grant, award_revoke, awards_grant_bulk
from scoring.models import MemberMetrics, MetricsSnapshot, OutboxEvent, TierChange
from scoring.scores import scores_process_batch
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _grant(recipient, granter, points=500, key="k1", **extra):
    return award_grant(
        recipient=recipient,
        points=points,
        reason=extra.pop("reason", "Keynote at Swamp Summit 2026"),
        idempotency_key=key,
        granted_by=granter,
        source="form",
        **extra,
    )


@pytest.fixture
def granter(db):
    return UserFactory(username="granter", staff=True)


def test_grant_writes_one_award_granted_event(member, granter):
    result = _grant(member, granter, points=500, category="event")
    events = list(OutboxEvent.objects.all())
    assert [e.event_type for e in events] == ["award.granted"]
    event = events[0]
    assert event.event_id.startswith("msg_")
    assert event.source_id == result.award.pk
    assert event.member_id == member.pk
    assert event.payload == {
        "award_id": result.award.pk,
        "username": member.username,
        "points": 500,
        "reason": "Keynote at Swamp Summit 2026",
        "category": "event",
        "total_score": 500,
        "tier": {"ordinal": 1, "name": "Sludge Whelp"},
    }


def test_repeated_grant_writes_no_second_event(member, granter):
    _grant(member, granter)
    _grant(member, granter)
    assert OutboxEvent.objects.count() == 1


def test_private_award_has_null_reason_and_no_staff_note(member, granter):
    _grant(member, granter, public=False, staff_note="secret staff remark")
    event = OutboxEvent.objects.get()
    assert event.payload["reason"] is None
    assert "secret staff remark" not in str(event.payload)
    assert "secret staff remark" not in str(event.context)
    assert "staff_note" not in event.payload


def test_grant_crossing_a_tier_writes_award_granted_and_tier_changed(member, granter):
    _grant(member, granter, points=20_000)
    by_type = {e.event_type: e for e in OutboxEvent.objects.all()}
    assert set(by_type) == {"award.granted", "tier.changed"}
    change = TierChange.objects.get(member=member)
    tier_event = by_type["tier.changed"]
    assert tier_event.source_id == change.pk
    assert tier_event.payload == {
        "username": member.username,
        "from": {"ordinal": 1, "name": "Sludge Whelp"},
        "to": {"ordinal": 2, "name": "Murk Lurker"},
        "cause": "award",
        "total_score": 20_000,
    }
    assert by_type["award.granted"].context["from_tier"] == 1
    assert by_type["award.granted"].payload["tier"] == {"ordinal": 2, "name": "Murk Lurker"}


def test_revocation_writes_award_revoked_and_tier_changed_down(member, granter):
    result = _grant(member, granter, points=20_000)
    award_revoke(award=result.award, revoked_by=granter, reason="duplicate entry")
    award_revoke(award=result.award, revoked_by=granter, reason="duplicate entry")
    revoked = OutboxEvent.objects.get(event_type="award.revoked")
    assert revoked.payload == {
        "award_id": result.award.pk,
        "username": member.username,
        "points": 20_000,
        "total_score": 0,
        "tier": {"ordinal": 1, "name": "Sludge Whelp"},
    }
    causes = list(
        OutboxEvent.objects.filter(event_type="tier.changed")
        .order_by("id")
        .values_list("payload__cause", flat=True)
    )
    assert causes == ["award", "revocation"]
    assert OutboxEvent.objects.count() == 4


def test_rollback_writes_no_event(member, granter):
    class Boom(Exception):
        pass

    def grant_then_fail():
        with transaction.atomic():
            _grant(member, granter, points=20_000)
            assert OutboxEvent.objects.count() == 2
            raise Boom

    with pytest.raises(Boom):
        grant_then_fail()
    assert OutboxEvent.objects.count() == 0


def test_bulk_grant_writes_one_event_per_new_award(granter):
    members = UserFactory.create_batch(3)
    specs = [
        GrantSpec(recipient_id=m.pk, points=100 + i, reason="Swamp cleanup", idempotency_key="b")
        for i, m in enumerate(members)
    ]
    awards_grant_bulk(grants=specs, granted_by=granter, source="bulk")
    awards_grant_bulk(grants=specs, granted_by=granter, source="bulk")
    assert OutboxEvent.objects.filter(event_type="award.granted").count() == 3


def test_score_batch_writes_tier_changes_set_based(django_assert_max_num_queries):
    members = UserFactory.create_batch(30)
    for m in members:
        MemberMetrics.objects.create(member=m, award_points=25_000)
        MetricsSnapshot.objects.create(member=m, enqueued_at=timezone.now())
    # The query count does not depend on how many members changed tier.
    with django_assert_max_num_queries(20):
        scores_process_batch()
    events = OutboxEvent.objects.filter(event_type="tier.changed")
    assert events.count() == 30
    assert {e.payload["cause"] for e in events} == {"activity"}
    assert set(events.values_list("source_id", flat=True)) == set(
        TierChange.objects.values_list("id", flat=True)
    )
