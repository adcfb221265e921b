"""The ingest time rules (SPEC §4): nothing from the future, nothing counted from long ago.

A ``startedAt`` or ``timestamp`` more than ``TELEMETRY_MAX_FUTURE_S`` (5 minutes) ahead is a
400 naming the field; an event older than ``TELEMETRY_MAX_AGE_DAYS`` (30) when it arrives is
stored and processed but never counted, and shown to staff as late.
"""

from datetime import UTC, datetime, timedelta

import pytest

from scoring.consumer import events_consume
from scoring.models import TelemetryEvent, UserScore
from scoring.scores import scores_process_batch
from tests.cli_wire import cli_entry, cli_post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def entries_over(days: range, now: datetime) -> list[dict]:
    """One entry per day offset (negative: past), each at ``now`` shifted by that many days."""
    return [
        cli_entry(command="model", started_at=now + timedelta(days=offset), entry_id=f"d{offset}")
        for offset in days
    ]


def test_a_batch_reaching_into_the_future_is_refused_whole(client, member, ingest_key):
    now = datetime.now(UTC)
    entries = entries_over(range(-200, 40), now)  # 240 entries, 39 of them in the future

    response = cli_post(client, entries, ingest_key[1])

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert {(e["index"], e["field"]) for e in errors} == {
        (index, "properties.startedAt") for index in range(201, 240)
    }
    assert not TelemetryEvent.objects.exists()
    events_consume()
    scores_process_batch()
    assert not UserScore.objects.filter(member=member, streak_days__gt=0).exists()


def test_backdated_events_do_not_build_a_streak(client, member, ingest_key, settings):
    settings.TELEMETRY_MAX_AGE_DAYS = 30
    now = datetime.now(UTC)
    entries = entries_over(range(-200, 1), now)  # today and the 200 days before

    response = cli_post(client, entries, ingest_key[1])

    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 201, "duplicates": 0}
    events_consume()
    scores_process_batch()
    score = UserScore.objects.get(member=member)
    # Days 0..29 ago count; day 30 is just over 30 days old on arrival, so late like the rest.
    assert score.streak_days == 30
    assert member.metrics.total_events == 30
    assert TelemetryEvent.objects.filter(late=True).count() == 171
    assert TelemetryEvent.objects.filter(late=True).processed().count() == 171
    assert not TelemetryEvent.objects.with_status().exclude(status="processed").exists()


def test_an_offline_week_still_counts(client, member, ingest_key):
    now = datetime.now(UTC)

    cli_post(client, entries_over(range(-7, 1), now), ingest_key[1])
    events_consume()

    assert member.metrics.total_events == 8
    assert not TelemetryEvent.objects.filter(late=True).exists()


@pytest.mark.parametrize(
    ("ahead", "status"),
    [(timedelta(minutes=4, seconds=50), 202), (timedelta(minutes=5, seconds=10), 400)],
)
def test_started_at_may_be_a_few_minutes_ahead_not_more(client, ingest_key, ahead, status):
    entry = cli_entry(started_at=datetime.now(UTC) + ahead)

    response = cli_post(client, [entry], ingest_key[1])

    assert response.status_code == status
    if status == 400:
        assert response.json()["errors"][0]["field"] == "properties.startedAt"
        assert "future" in response.json()["errors"][0]["message"]


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59Z", "2099-01-01T00:00:00+00:00"])
def test_a_future_timestamp_is_refused(client, ingest_key, timestamp):
    entry = cli_entry()
    entry["timestamp"] = timestamp

    response = cli_post(client, [entry], ingest_key[1])

    assert response.status_code == 400
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [(0, "timestamp")]
    assert not TelemetryEvent.objects.exists()


def test_the_age_limit_is_a_setting(client, member, ingest_key, settings):
    settings.TELEMETRY_MAX_AGE_DAYS = 3
    now = datetime.now(UTC)

    cli_post(client, entries_over(range(-5, 1), now), ingest_key[1])
    events_consume()

    assert member.metrics.total_events == 3
    assert TelemetryEvent.objects.filter(late=True).count() == 3
