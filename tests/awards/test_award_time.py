"""The time rules for the ``award`` event: no future timestamps, no future ``granted_at``."""

from datetime import UTC, datetime, timedelta

import pytest

from awards.models import Award
from scoring.consumer import events_consume
from scoring.models import TelemetryEvent
from tests.cli_wire import award_event, ingest_post
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def post_award(client, key: str, timestamp: str):
    return ingest_post(client, key, award_event(timestamp=timestamp))


def test_an_award_dated_in_year_9999_is_refused(client, award_key):
    UserFactory(username="ada")

    response = post_award(client, award_key[1], "9999-12-31T00:00:00Z")

    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "timestamp")]
    assert not TelemetryEvent.objects.exists()


def test_an_award_a_little_ahead_is_granted_no_later_than_it_arrived(client, award_key):
    UserFactory(username="ada")
    ahead = datetime.now(UTC) + timedelta(minutes=4)

    response = post_award(client, award_key[1], ahead.isoformat())
    events_consume()

    assert response.status_code == 202, response.content
    award = Award.objects.get()
    event = TelemetryEvent.objects.get()
    assert award.granted_at <= event.received_at < ahead
