"""The pure activity formula (SPEC §6): the worked example, every clause, exactness."""

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.formula import (
    DEFAULT_CONSTANTS,
    ScoringConstants,
    activity_score,
    constants_from_mapping,
    streak_days,
)

AS_OF = date(2026, 11, 24)


def days_ending(end: date, n: int) -> list[date]:
    return [end - timedelta(days=i) for i in range(n)]


def test_worked_example_of_the_spec_is_1755():
    result = activity_score(
        event_counts={"model": 30, "workflow": 120, "data": 5},
        active_dates=days_ending(AS_OF, 5),
        as_of=AS_OF,
    )
    assert result.base == 1350  # 300 + 1000 (capped) + 50
    assert result.diversity == 150
    assert result.streak_days == 5
    assert result.streak_mult == Fraction(27, 25)
    assert result.rolling_mult == Fraction(13, 12)
    assert result.rolling_active_days == 5
    assert result.activity == 1755


def test_iso_strings_and_dates_are_the_same_input():
    strings = [d.isoformat() for d in days_ending(AS_OF, 5)]
    result = activity_score(event_counts={"model": 30}, active_dates=strings, as_of=AS_OF)
    same = activity_score(
        event_counts={"model": 30}, active_dates=days_ending(AS_OF, 5), as_of=AS_OF
    )
    assert result == same


def test_no_activity_scores_zero():
    result = activity_score(event_counts={}, active_dates=[], as_of=AS_OF)
    assert (result.activity, result.streak_days) == (0, 0)
    assert result.streak_mult == 1
    assert result.rolling_mult == 1


def test_group_cap_applies_per_group():
    # 100 x 10 = 1000 exactly at the cap; 101 x 10 is capped to 1000; 99 x 10 is not.
    for count, base in [(99, 990), (100, 1000), (101, 1000), (10_000, 1000)]:
        result = activity_score(event_counts={"vault": count}, active_dates=[], as_of=AS_OF)
        assert result.base == base
        assert result.activity == base + 50


def test_per_group_cap_override_is_case_insensitive():
    constants = constants_from_mapping({"GROUP_CAPS": {"Model": 200}})
    result = activity_score(
        event_counts={"model": 50, "workflow": 50},
        active_dates=[],
        as_of=AS_OF,
        constants=constants,
    )
    assert result.base == 200 + 500


def test_diversity_counts_groups_with_at_least_one_event():
    result = activity_score(
        event_counts={"model": 1, "data": 2, "vault": 0, "auth": -3},
        active_dates=[],
        as_of=AS_OF,
    )
    assert result.diversity == 100
    assert result.base == 30
    assert result.activity == 130


@pytest.mark.parametrize(
    ("latest_offset", "run", "expected"),
    [
        (0, 4, 4),  # ends today
        (1, 4, 4),  # ended yesterday: still alive
        (2, 4, 0),  # ended two days ago: broken
        (0, 1, 1),
    ],
)
def test_streak_ends_today_or_yesterday(latest_offset, run, expected):
    dates = days_ending(AS_OF - timedelta(days=latest_offset), run)
    assert streak_days(active_dates=dates, as_of=AS_OF) == expected
    result = activity_score(event_counts={"model": 10}, active_dates=dates, as_of=AS_OF)
    assert result.streak_days == expected
    assert result.streak_mult == 1 + Fraction(2, 100) * max(expected - 1, 0)


def test_streak_counts_the_run_ending_at_the_latest_date_only():
    dates = [*days_ending(AS_OF, 3), *days_ending(AS_OF - timedelta(days=5), 10)]
    assert streak_days(active_dates=dates, as_of=AS_OF) == 3


def test_streak_multiplier_is_capped():
    # 1 + 0.02 x 25 = 1.5 at a 26-day streak; longer streaks stay at 1.5.
    for run, mult in [(25, Fraction(148, 100)), (26, Fraction(3, 2)), (60, Fraction(3, 2))]:
        result = activity_score(
            event_counts={"model": 1}, active_dates=days_ending(AS_OF, run), as_of=AS_OF
        )
        assert result.streak_mult == mult


def test_future_dates_are_ignored():
    dates = [AS_OF + timedelta(days=1), *days_ending(AS_OF - timedelta(days=1), 2)]
    result = activity_score(event_counts={"model": 1}, active_dates=dates, as_of=AS_OF)
    assert result.streak_days == 2
    assert result.rolling_active_days == 2


def test_rolling_window_is_the_30_days_ending_at_as_of():
    inside_edge = AS_OF - timedelta(days=29)
    outside_edge = AS_OF - timedelta(days=30)
    result = activity_score(
        event_counts={"model": 1},
        active_dates=[inside_edge, outside_edge, AS_OF - timedelta(days=10)],
        as_of=AS_OF,
    )
    assert result.rolling_active_days == 2
    assert result.rolling_mult == 1 + Fraction(1, 2) * Fraction(2, 30)


def test_rolling_window_full_month_gives_one_and_a_half():
    result = activity_score(
        event_counts={"model": 1}, active_dates=days_ending(AS_OF, 45), as_of=AS_OF
    )
    assert result.rolling_active_days == 30
    assert result.rolling_mult == Fraction(3, 2)


def test_arithmetic_is_exact_where_floats_drift():
    # base 1000 (capped) + 880, diversity 100, streak 1, one day in the window:
    # 1980 x 1 x 61/60 = 2013 exactly; in floats 1980 x (1 + 0.5 x 1/30) is 2012.9999… and
    # would floor to 2012.
    result = activity_score(
        event_counts={"model": 150, "workflow": 88}, active_dates=[AS_OF], as_of=AS_OF
    )
    assert result.base + result.diversity == 1980
    assert result.rolling_mult == Fraction(61, 60)
    assert result.activity == 2013
    assert int(1980 * (1 + 0.5 * 1 / 30)) == 2012  # the float trap this avoids

    # A float constant in the settings means its decimal text: 0.29 x 100 is 29, where in
    # floats it is 28.999999999999996.
    constants = constants_from_mapping({"BASE_POINTS": 0.29, "DIVERSITY_BONUS": 0})
    result = activity_score(
        event_counts={"model": 100}, active_dates=[], as_of=AS_OF, constants=constants
    )
    assert result.base == 29
    assert result.activity == 29
    assert 0.29 * 100 < 29


def test_result_is_floored_once_at_the_end():
    # (10 + 50) x 1.02 x (1 + 0.5 x 2/30) = 61.2 x 31/30 = 63.24 → 63; flooring each
    # factor first would give 60.
    result = activity_score(
        event_counts={"model": 1}, active_dates=days_ending(AS_OF, 2), as_of=AS_OF
    )
    assert result.activity == 63


def test_settings_override_every_constant():
    constants = constants_from_mapping(
        {
            "BASE_POINTS": 2,
            "GROUP_CAP": 15,
            "DIVERSITY_BONUS": 1,
            "STREAK_STEP": "0.5",
            "STREAK_MAX": 2,
            "ROLLING_BONUS": 1,
            "ROLLING_DAYS": 2,
        }
    )
    assert constants == ScoringConstants(
        base_points=Fraction(2),
        group_cap=Fraction(15),
        diversity_bonus=Fraction(1),
        streak_step=Fraction(1, 2),
        streak_max=Fraction(2),
        rolling_bonus=Fraction(1),
        rolling_days=2,
    )
    result = activity_score(
        event_counts={"a": 10, "b": 3},
        active_dates=days_ending(AS_OF, 3),
        as_of=AS_OF,
        constants=constants,
    )
    # base 15 + 6, diversity 2, streak 3 → min(1 + 0.5 x 2, 2) = 2, rolling 2/2 → 2.
    assert result.activity == (15 + 6 + 2) * 2 * 2


@pytest.mark.parametrize(
    "overrides",
    [
        {"BASE_POINT": 5},
        {"ROLLING_DAYS": 0},
        {"ROLLING_DAYS": 1.5},
        {"GROUP_CAP": -1},
        {"STREAK_STEP": "lots"},
        {"GROUP_CAPS": {"model": -5}},
        {"DIVERSITY_BONUS": True},
    ],
)
def test_bad_settings_fail_naming_the_key(overrides):
    with pytest.raises(ValueError, match=next(iter(overrides))):
        constants_from_mapping(overrides)


def test_defaults_are_the_spec_numbers():
    assert constants_from_mapping({}) == DEFAULT_CONSTANTS
    assert (DEFAULT_CONSTANTS.base_points, DEFAULT_CONSTANTS.group_cap) == (10, 1000)
    assert DEFAULT_CONSTANTS.diversity_bonus == 50
    assert DEFAULT_CONSTANTS.streak_step == Fraction(1, 50)
    assert DEFAULT_CONSTANTS.streak_max == Fraction(3, 2)
    assert DEFAULT_CONSTANTS.rolling_bonus == Fraction(1, 2)
    assert DEFAULT_CONSTANTS.rolling_days == 30


GROUPS = ["model", "workflow", "data", "vault", "extension", "auth"]


@given(
    counts=st.dictionaries(st.sampled_from(GROUPS), st.integers(0, 500), max_size=6),
    offsets=st.sets(st.integers(-5, 90), max_size=60),
    group=st.sampled_from(GROUPS),
)
def test_one_more_event_on_as_of_never_lowers_the_score(counts, offsets, group):
    dates = [AS_OF - timedelta(days=o) for o in offsets]
    before = activity_score(event_counts=counts, active_dates=dates, as_of=AS_OF)
    after = activity_score(
        event_counts={**counts, group: counts.get(group, 0) + 1},
        active_dates=[*dates, AS_OF],
        as_of=AS_OF,
    )
    assert after.activity >= before.activity
    assert after.streak_days >= before.streak_days
