"""The benchmark harness's data generator and report, at a tiny size on the test database."""

import json
import random
from datetime import UTC, datetime

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from awards.models import Award, AwardRevocation
from bench import datagen, report
from bench.config import SIZES, Config, bench_database_url
from scoring.models import TelemetryEvent

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs PostgreSQL (the generator loads with COPY)"
)


def test_activity_plan_gives_every_member_an_event_and_sums_to_the_total():
    rng = random.Random(1)
    plans = datagen.activity_plan(rng, list(range(1, 201)), 3000, 60)
    assert sum(p.events for p in plans) == 3000
    assert min(p.events for p in plans) >= 1
    assert all(0 <= d < 60 for p in plans for d in p.day_offsets)
    # Heavy-tailed: the busiest member runs far more commands than the median one.
    counts = sorted(p.events for p in plans)
    assert counts[-1] > 5 * counts[len(counts) // 2]


def test_cli_event_has_the_shape_the_swamp_cli_sends():
    event = datagen.cli_event(
        random.Random(2), distinct_id="device-1", started_at=datetime(2026, 11, 24, tzinfo=UTC)
    )
    props = event["properties"]
    assert event["event"] == "cli_invocation"
    assert set(props) >= {
        "id", "invocation", "result", "startedAt", "completedAt", "durationMs",
        "swampVersion", "denoVersion", "platform",
    }  # fmt: skip
    assert props["invocation"]["command"] in datagen.GROUP_NAMES
    assert set(props["invocation"]) >= {"command", "args", "optionKeys", "globalOptions"}
    assert all(type(option) is str for option in props["invocation"]["globalOptions"])
    assert props["startedAt"].endswith("Z")
    assert datetime.fromisoformat(props["completedAt"]) >= datetime.fromisoformat(
        props["startedAt"]
    )


def test_bench_database_is_never_the_apps_database():
    app = "postgres://postgres@127.0.0.1:5432/swampclub"
    assert bench_database_url({"DATABASE_URL": app}).endswith("/swampclub_bench")
    assert bench_database_url({}).endswith("127.0.0.1:5432/swampclub_bench")
    with pytest.raises(SystemExit):
        bench_database_url({"BENCH_DATABASE_URL": app})  # no "bench" in the name
    with pytest.raises(SystemExit):
        bench_database_url({"DATABASE_URL": f"{app}_bench", "BENCH_DATABASE_URL": f"{app}_bench"})


def test_json_line_starts_with_every_required_key_and_null_for_missing_parts():
    payload = report.json_figures({"copy_rows_per_s": 1234.6, "grant_p95_ms": 12.345}, {"x": 1})
    line = report.json_line(payload)
    decoded = json.loads(line)
    assert list(decoded)[: len(report.REQUIRED_KEYS)] == list(report.REQUIRED_KEYS)
    assert decoded["copy_rows_per_s"] == 1235
    assert decoded["grant_p95_ms"] == 12.3
    assert decoded["consume_events_per_s"] is None
    assert "n/a" in report.table_text({}, {})


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_generator_loads_members_events_and_awards_with_copy(tmp_path):
    settings = connection.settings_dict
    pg = psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"],
        host=settings["HOST"],
        port=settings["PORT"] or None,
        autocommit=True,
    )
    from bench.measure import Bench

    size = SIZES["tiny"]
    config = Config(size=size, bench_db_url="unused", redis_url="", out_dir=tmp_path)
    bench = Bench(config, pg=pg)
    try:
        bench.generate()
        bench.load_backlog()
        bench.load_awards()
    finally:
        pg.close()

    members = get_user_model().objects.filter(password="!bench")
    assert members.count() == size.members
    events = TelemetryEvent.objects.pending()
    assert events.count() == size.events
    assert events.values("member").distinct().count() == size.members
    sample = events.order_by("id").first()
    assert sample.properties["id"] == sample.insert_id
    assert sample.properties["invocation"]["command"] in datagen.GROUP_NAMES
    # Counted among the generated members only: rows of other tests are not the generator's.
    assert Award.objects.filter(recipient__password="!bench").count() == size.awards
    # Every award whose id is a multiple of 50 is revoked (ids continue the table's
    # sequence, so which ones depends on the rows earlier tests made).
    award_ids = Award.objects.filter(recipient__password="!bench").values_list("id", flat=True)
    assert AwardRevocation.objects.filter(award__recipient__password="!bench").count() == sum(
        1 for award_id in award_ids if award_id % 50 == 0
    )
