"""The consumer's claim extracts only what the cli_invocation fold reads, in SQL on
PostgreSQL: odd property shapes must fold (or be rejected) exactly as the full documents
would be."""

from datetime import UTC, datetime

import pytest

from scoring.consumer import events_consume
from scoring.models import MemberMetrics, TelemetryEvent
from tests.factories import TelemetryEventFactory

pytestmark = pytest.mark.django_db


def _event(member, properties, at="2026-11-20T12:00:00+00:00"):
    return TelemetryEventFactory(
        member=member, timestamp=datetime.fromisoformat(at).astimezone(UTC), properties=properties
    )


def test_odd_shapes_fold_like_the_whole_document(member):
    _event(member, {"invocation": {"command": "Vault"}, "startedAt": "2026-11-21T23:30:00-02:00"})
    # A startedAt that is not a valid date-time, or not a string, leaves the timestamp's date.
    _event(member, {"invocation": {"command": "vault"}, "startedAt": "yesterday"})
    _event(
        member,
        {"invocation": {"command": "model"}, "startedAt": 20261119},
        "2026-11-19T01:00+00:00",
    )
    # A naive startedAt is UTC.
    _event(member, {"invocation": {"command": "model"}, "startedAt": "2026-11-18T23:59:59"})
    rejected = [
        _event(member, {"invocation": {"command": 7}}),
        _event(member, {"invocation": ["command"]}),
        _event(member, {"invocation": {"command": "   "}}),
        _event(member, ["invocation"]),
    ]

    assert events_consume() == 8

    metrics = MemberMetrics.objects.get(member=member)
    assert metrics.event_counts == {"vault": 2, "model": 2}
    assert metrics.active_dates == ["2026-11-18", "2026-11-19", "2026-11-20", "2026-11-22"]
    assert metrics.total_events == 4
    assert metrics.first_event_at == datetime(2026, 11, 18, 23, 59, 59, tzinfo=UTC)
    assert metrics.last_event_at == datetime(2026, 11, 22, 1, 30, tzinfo=UTC)
    for event in rejected:
        event.refresh_from_db()
        assert event.status == TelemetryEvent.Status.REJECTED
        assert event.error == "properties.invocation.command: must be a non-empty string"
    # The stored documents are untouched: only the claim's answer was trimmed.
    assert TelemetryEvent.objects.filter(properties__invocation__command="Vault").count() == 1


def test_other_event_types_get_their_whole_properties(member, monkeypatch):
    from scoring import registry
    from scoring.registry import EventType, HandleResult

    seen = []

    def handle(events):
        seen.extend((e.event, e.properties, e.insert_id, e.api_key_id) for e in events)
        return HandleResult()

    monkeypatch.setitem(
        registry._registry, "note", EventType(name="note", scope="ingest", handle=handle)
    )
    note = TelemetryEventFactory(member=member, event="note", properties={"deep": {"a": [1, 2]}})

    assert events_consume() == 1
    assert seen == [("note", {"deep": {"a": [1, 2]}}, note.insert_id, note.api_key_id)]
