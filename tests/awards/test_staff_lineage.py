"""The staff member page's lineage: events behind each group, rejected events."""

from datetime import timedelta

import pytest
from django.utils import timezone

from scoring.models import PendingEvent
from staff.selectors.lineage import event_lineage_for_member, rejected_events_for_member
from tests.factories import MemberMetricsFactory, TelemetryEventFactory, UserFactory

pytestmark = pytest.mark.django_db


def _events(member, group: str, n: int, *, status="processed", start=0, **extra):
    now = timezone.now()
    for index in range(start, start + n):
        event = TelemetryEventFactory.build(
            member=member,
            insert_id=f"{member.username}-{group}-{status}-{index}",
            timestamp=now - timedelta(minutes=index),
            status=status,
            **extra,
        )
        event.properties["invocation"]["command"] = group
        event.cli_version = f"1.{index % 3}.0"  # from the User-Agent
        event.save()
        if status != "pending":  # off the consumer's queue, where the trigger put it
            PendingEvent.objects.filter(event_id=event.pk).delete()


@pytest.fixture
def fenrunner(db):
    member = UserFactory(username="fenrunner")
    MemberMetricsFactory(member=member, event_counts={"model": 60, "data": 2}, total_events=62)
    return member


def test_latest_fifty_per_group_newest_first_with_cli_version(fenrunner):
    _events(fenrunner, "model", 60)
    _events(fenrunner, "Data", 2)  # groups are compared lower-cased, as the consumer does
    _events(UserFactory(), "model", 3)  # someone else's events never show
    lineage = event_lineage_for_member(member=fenrunner, counts={"model": 60, "data": 2})
    assert [g.group for g in lineage] == ["data", "model"]
    data, model = lineage
    assert len(model.events) == 50
    assert model.truncated
    assert model.events[0].insert_id == "fenrunner-model-processed-0"
    assert model.events[-1].insert_id == "fenrunner-model-processed-49"
    assert model.events[1].cli_version == "1.1.0"
    assert (data.count, len(data.events), data.truncated) == (2, 2, False)


def test_rejected_events_carry_their_reason_and_pending_ones_do_not_count(fenrunner):
    _events(fenrunner, "model", 2, status="rejected", error="invocation.command: missing")
    _events(fenrunner, "model", 1, status="pending", start=10)
    rejected = rejected_events_for_member(member=fenrunner)
    assert [e.error for e in rejected] == ["invocation.command: missing"] * 2
    assert event_lineage_for_member(member=fenrunner, counts={}) == []


@pytest.mark.parametrize("per_group", [3, 70])
def test_page_shows_lineage_in_a_constant_number_of_queries(
    staff_client, fenrunner, per_group, django_assert_max_num_queries
):
    _events(fenrunner, "model", per_group)
    _events(fenrunner, "data", per_group)
    _events(fenrunner, "vault", 2, status="rejected", error="poison: boom")
    with django_assert_max_num_queries(12):
        response = staff_client.get(f"/staff/members/{fenrunner.username}/")
    html = response.content.decode()
    assert "Where the score comes from" in html
    assert html.count("<code>fenrunner-model-processed-") == min(per_group, 50)
    assert "poison: boom" in html


def test_cached_lineage_follows_the_group_counts(fenrunner):
    from staff.selectors.lineage import event_lineage_cached

    _events(fenrunner, "model", 2)
    first = event_lineage_cached(member=fenrunner, counts={"model": 2})
    assert [e.insert_id for e in first[0].events] == [
        "fenrunner-model-processed-0",
        "fenrunner-model-processed-1",
    ]
    _events(fenrunner, "model", 1, start=5)
    # Same counts: the cached lineage (the consumer changes the counts with every event).
    assert event_lineage_cached(member=fenrunner, counts={"model": 2}) == first
    again = event_lineage_cached(member=fenrunner, counts={"model": 3})
    assert len(again[0].events) == 3


def test_lineage_rows_escape_telemetry_text_and_print_utc_times():
    from datetime import UTC, datetime

    from staff.selectors.lineage import LineageEvent
    from staff.templatetags.lineage_rows import lineage_event_rows, rejected_event_rows

    at = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    evil = "<script>x</script>"
    event = LineageEvent(1, evil, at, at, evil, error=evil, event=evil)
    counted = lineage_event_rows([event, LineageEvent(2, "id-2", at, at, None)])
    rejected = rejected_event_rows([event])
    assert "<script>" not in counted + rejected
    assert counted.count("&lt;script&gt;x&lt;/script&gt;") == 2  # version and insert_id
    assert rejected.count("&lt;script&gt;x&lt;/script&gt;") == 4  # event, version, id, error
    assert '<time datetime="2026-03-04T05:06:07+00:00">2026-03-04 05:06:07</time>' in counted
    assert "<td>—</td>" in counted  # no CLI version
