"""The bench's history size: its generator writes processed CLI events over a time range."""

import json
import random
from datetime import UTC, datetime

from bench import datagen
from bench.config import SIZES


def test_history_size_stores_ten_million_events_with_the_full_backlog():
    history, full = SIZES["history"], SIZES["full"]
    assert history.events == full.events == 1_000_000
    assert history.events + history.stored_events == 10_000_000
    # Spread over enough months that partitions matter (with the backlog's 120 days).
    assert history.stored_months + history.days // 30 >= 13
    assert all(size.stored_events == 0 for name, size in SIZES.items() if name != "history")


def test_stored_events_are_processed_cli_events_inside_their_range():
    start, end = datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
    lines = list(
        datagen.stored_event_copy_lines(
            random.Random(3), [7, 8, 9], count=2000, start=start, end=end
        )
    )
    assert len(lines) == 2000
    rows = [line.rstrip("\n").split("\t") for line in lines]
    assert {len(row) for row in rows} == {len(datagen.STORED_COLUMNS)}
    columns = [dict(zip(datagen.STORED_COLUMNS, row, strict=True)) for row in rows]
    assert len({c["insert_id"] for c in columns}) == 2000
    months = set()
    for c in columns:
        props = json.loads(c["properties"])
        stamp = datetime.fromisoformat(c["timestamp"])
        assert start <= stamp < end
        assert c["error"] == ""  # processed (loaded without the enqueue trigger)
        assert c["event"] == "cli_invocation"
        assert int(c["member_id"]) in {7, 8, 9}
        assert props["id"] == c["insert_id"]
        assert props["invocation"]["command"] in datagen.GROUP_NAMES
        started = datetime.fromisoformat(props["startedAt"])
        assert started <= datetime.fromisoformat(props["completedAt"]) == stamp
        months.add((stamp.year, stamp.month))
    assert len(months) == 10
