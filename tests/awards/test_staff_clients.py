"""The staff dashboard's clients panel: events per CLI version, drift per field, late events."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from scoring.consumer import events_consume
from scoring.drift import clients_summary
from scoring.models import TelemetryEvent
from tests.cli_wire import cli_entry, cli_post
from tests.factories import TelemetryEventFactory

pytestmark = pytest.mark.django_db

OLD, NEW = "20260822.120000.0-sha.06b61472", "20261120.090000.0-sha.1a2b3c4d"


@pytest.fixture
def posted(client, ingest_key):
    """Three entries from the current CLI; two from a newer one that drifted two fields."""
    key = ingest_key[1]
    response = cli_post(client, [cli_entry(), cli_entry(), cli_entry()], key, version=OLD)
    assert response.status_code == 202
    drifted = [
        cli_entry(durationMs="12ms", sandbox=True),
        cli_entry(durationMs="9ms"),
    ]
    drifted[0]["properties"]["invocation"]["globalOptions"] = {"json": True}
    response = cli_post(client, drifted, key, version=NEW)
    assert response.status_code == 202, response.content
    return key


def test_each_event_keeps_its_cli_version_and_drifted_fields(posted):
    stored = {e.insert_id: e for e in TelemetryEvent.objects.all()}

    assert sorted(e.cli_version for e in stored.values()) == [OLD, OLD, OLD, NEW, NEW]
    assert sorted(tuple(e.drift) for e in stored.values() if e.drift is not None) == [
        ("durationMs",),
        ("invocation.globalOptions", "durationMs"),
    ]
    assert sum(e.drift is None for e in stored.values()) == 3


def test_a_client_that_is_not_the_cli_has_no_version(client, ingest_key):
    client.post(
        "/ingest",
        data=json.dumps(cli_entry()),
        content_type="application/json",
        headers={"x-api-key": ingest_key[1], "User-Agent": "curl/8.5.0"},
    )

    assert TelemetryEvent.objects.get().cli_version == ""


def test_summary_counts_per_version_and_field(posted):
    summary = clients_summary()

    assert [(v.version, v.events, v.drifted_events) for v in summary.versions] == [
        (NEW, 2, 2),
        (OLD, 3, 0),
    ]
    assert summary.versions[0].drift == {"durationMs": 2, "invocation.globalOptions": 1}
    assert summary.versions[1].drift == {}


def test_summary_covers_the_last_seven_days_only(member):
    TelemetryEventFactory(
        member=member, cli_version=OLD, drift=["durationMs"], late=True,
        received_at=timezone.now() - timedelta(days=8),
    )  # fmt: skip
    TelemetryEventFactory(member=member, cli_version=OLD, late=True)

    summary = clients_summary()

    assert [(v.version, v.events, v.drift) for v in summary.versions] == [(OLD, 1, {})]
    assert summary.late_events == 1


def test_dashboard_shows_versions_drift_and_late_count(staff_client, posted, member):
    TelemetryEventFactory(member=member, late=True, status="processed")

    response = staff_client.get("/staff/")

    html = response.content.decode()
    assert response.status_code == 200
    assert f"<code>{NEW}</code>" in html
    assert f"<code>{OLD}</code>" in html
    assert "<code>durationMs</code> 2" in html
    assert "<code>invocation.globalOptions</code> 1" in html
    assert '<dd id="late-events">1</dd>' in html


def test_clients_panel_refreshes_alone(staff_client, posted, htmx_headers):
    response = staff_client.get("/staff/", headers={**htmx_headers, "HX-Target": "clients"})

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="clients"' in html
    assert 'id="health"' not in html


def test_dashboard_clients_panel_needs_staff(client, member):
    client.force_login(member)

    assert client.get("/staff/").status_code == 403


def test_old_started_at_on_arrival_is_late_not_counted(client, member, ingest_key):
    old = datetime.now(UTC) - timedelta(days=45)
    cli_post(client, [cli_entry(started_at=old)], ingest_key[1])

    events_consume()

    assert clients_summary().late_events == 1
    assert not hasattr(member, "metrics") or member.metrics.total_events == 0
