"""The score batch's day-number path gives exactly what ``activity_score`` gives."""

import json
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.formula import activity_from_days, activity_score, day_numbers
from scoring.score_rows import days_from_json

AS_OF = date(2026, 11, 24)
offsets = st.lists(st.integers(min_value=-70, max_value=5), max_size=40)
counts = st.dictionaries(
    st.sampled_from(["model", "workflow", "data", "vault"]), st.integers(-2, 200), max_size=4
)


def reference_streak(dates: set[date], as_of: date) -> int:
    """SPEC §6 read literally: the run ending at the latest date up to ``as_of``."""
    past = {d for d in dates if d <= as_of}
    if not past or max(past) < as_of - timedelta(days=1):
        return 0
    day, run = max(past), 0
    while day in past:
        run, day = run + 1, day - timedelta(days=1)
    return run


@settings(max_examples=300, deadline=None)
@given(offsets=offsets, event_counts=counts)
def test_day_numbers_score_like_the_dates(offsets, event_counts):
    dates = [AS_OF + timedelta(days=o) for o in offsets]  # unsorted, repeated, some future
    iso = [d.isoformat() for d in dates]
    days = day_numbers(iso)
    assert days == sorted({d.toordinal() for d in dates})
    assert days_from_json(json.dumps(iso)) == days
    assert days_from_json(json.dumps(sorted(set(iso)))) == days
    expected = activity_score(event_counts=event_counts, active_dates=iso, as_of=AS_OF)
    got = activity_from_days(event_counts=event_counts, days=days, as_of=AS_OF)
    assert got == expected
    assert got.streak_days == reference_streak(set(dates), AS_OF)
    window = {d for d in dates if AS_OF - timedelta(days=29) <= d <= AS_OF}
    assert got.rolling_active_days == len(window)


def test_days_from_json_falls_back_to_json_for_other_spellings():
    assert days_from_json("[]") == []
    assert days_from_json('["2026-11-24","2026-11-23"]') == day_numbers(
        ["2026-11-23", "2026-11-24"]
    )
    assert days_from_json('[ "2026-11-24" ]') == [AS_OF.toordinal()]
    assert days_from_json('["2026-11-24", "2026-11-24"]') == [AS_OF.toordinal()]


@pytest.mark.parametrize("text", ['["not a date"]', '["2026-11-24", "2026-13-01"]'])
def test_days_from_json_rejects_what_the_formula_rejects(text):
    with pytest.raises(ValueError, match=r"isoformat|month"):
        days_from_json(text)
