"""The activity score (SPEC §6) as pure functions: no Django, no database, no clock.

Every step is exact (``fractions.Fraction``) and the result is floored once at the end, so
``floor(1500 * 27/25 * 13/12)`` is 1755 and never 1754.9999… on some machine. Constants come
in as a :class:`ScoringConstants`; ``scoring.constants`` builds one from ``settings.SCORING``.

Dates are UTC calendar dates; ``active_dates`` may hold ``date`` objects or ISO strings (as
stored in ``MemberMetrics.active_dates``). Dates after ``as_of`` are ignored for the streak
and the rolling window: a score "as of" a day never sees the future (a CLI clock running
ahead only counts once that day arrives). They still count nothing twice: dates are a set.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from math import floor
from typing import Any


@dataclass(frozen=True)
class ScoringConstants:
    """Every constant of the formula, as exact numbers (names as in ``settings.SCORING``)."""

    base_points: Fraction = Fraction(10)
    group_cap: Fraction = Fraction(1000)
    # Per-group caps overriding ``group_cap`` (lower-cased group name → cap).
    group_caps: Mapping[str, Fraction] = field(default_factory=dict)
    diversity_bonus: Fraction = Fraction(50)
    streak_step: Fraction = Fraction(2, 100)
    streak_max: Fraction = Fraction(3, 2)
    rolling_bonus: Fraction = Fraction(1, 2)
    rolling_days: int = 30


# Setting key → (attribute, kind). Kinds: "num" exact number, "int" positive whole number,
# "caps" a mapping of group → number.
_SETTING_KEYS: dict[str, tuple[str, str]] = {
    "BASE_POINTS": ("base_points", "num"),
    "GROUP_CAP": ("group_cap", "num"),
    "GROUP_CAPS": ("group_caps", "caps"),
    "DIVERSITY_BONUS": ("diversity_bonus", "num"),
    "STREAK_STEP": ("streak_step", "num"),
    "STREAK_MAX": ("streak_max", "num"),
    "ROLLING_BONUS": ("rolling_bonus", "num"),
    "ROLLING_DAYS": ("rolling_days", "int"),
}


def exact(value: Any) -> Fraction:
    """``value`` as an exact Fraction; floats go through their shortest decimal text.

    ``Fraction(0.02)`` would be 0.0200000000000000004163…; ``exact(0.02)`` is 1/50, which
    is what whoever typed ``0.02`` in the settings meant.
    """
    if isinstance(value, bool):
        raise TypeError("a scoring constant cannot be a boolean")
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


def constants_from_mapping(overrides: Mapping[str, Any]) -> ScoringConstants:
    """The default constants with ``overrides`` (``settings.SCORING`` keys) applied.

    Raises ``ValueError`` naming the key for an unknown key or an unusable value, so a typo
    in the settings fails at start-up instead of silently scoring with the default.
    """
    values: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in _SETTING_KEYS:
            raise ValueError(f"SCORING[{key!r}]: unknown key (known: {sorted(_SETTING_KEYS)})")
        attribute, kind = _SETTING_KEYS[key]
        try:
            if kind == "caps":
                value: Any = {str(g).lower(): exact(v) for g, v in dict(raw).items()}
                if any(v < 0 for v in value.values()):
                    raise ValueError("caps must not be negative")
            elif kind == "int":
                value = int(raw)
                if value != raw or value < 1:
                    raise ValueError("must be a whole number ≥ 1")
            else:
                value = exact(raw)
                if value < 0:
                    raise ValueError("must not be negative")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"SCORING[{key!r}]: {exc}") from exc
        values[attribute] = value
    return ScoringConstants(**values)


DEFAULT_CONSTANTS = ScoringConstants()


@dataclass(frozen=True)
class ActivityBreakdown:
    """The activity score and every intermediate value that produced it."""

    activity: int
    base: Fraction
    diversity: Fraction
    streak_days: int
    streak_mult: Fraction
    rolling_mult: Fraction
    rolling_active_days: int


def _as_date(value: date | str) -> date:
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _dates_until(active_dates: Iterable[date | str], as_of: date) -> set[date]:
    return {d for d in map(_as_date, active_dates) if d <= as_of}


def streak_days(*, active_dates: Iterable[date | str], as_of: date) -> int:
    """Consecutive active days ending at the latest active date, if that is ``as_of`` or
    the day before; otherwise 0 (the streak is broken). Dates after ``as_of`` are ignored."""
    return _streak(_dates_until(active_dates, as_of), as_of)


def _streak(days: set[date], as_of: date) -> int:
    if not days:
        return 0
    latest = max(days)
    if latest < as_of - timedelta(days=1):
        return 0
    run = 0
    day = latest
    while day in days:
        run += 1
        day -= timedelta(days=1)
    return run


def activity_score(
    *,
    event_counts: Mapping[str, int],
    active_dates: Iterable[date | str],
    as_of: date,
    constants: ScoringConstants = DEFAULT_CONSTANTS,
) -> ActivityBreakdown:
    """The activity score of SPEC §6 with its breakdown.

    - base = Σ over groups of min(count * BASE_POINTS, cap of the group)
    - diversity = DIVERSITY_BONUS * groups with at least one event
    - streak_mult = min(1 + STREAK_STEP * max(streak - 1, 0), STREAK_MAX)
    - rolling_mult = 1 + ROLLING_BONUS * (active days in the ROLLING_DAYS days ending at
      ``as_of``) / ROLLING_DAYS
    - activity = floor((base + diversity) * streak_mult * rolling_mult), exact until the floor.

    Group names are compared lower-cased against ``GROUP_CAPS``; groups with a count ≤ 0
    contribute nothing (neither base nor diversity).
    """
    c = constants
    base = Fraction(0)
    groups = 0
    for group, count in event_counts.items():
        if count <= 0:
            continue
        groups += 1
        cap = c.group_caps.get(group.lower(), c.group_cap)
        base += min(count * c.base_points, cap)
    diversity = c.diversity_bonus * groups

    days = _dates_until(active_dates, as_of)
    streak = _streak(days, as_of)
    streak_mult = min(1 + c.streak_step * max(streak - 1, 0), c.streak_max)

    window_start = as_of - timedelta(days=c.rolling_days - 1)
    rolling_active = sum(1 for d in days if d >= window_start)
    rolling_mult = 1 + c.rolling_bonus * Fraction(rolling_active, c.rolling_days)

    activity = floor((base + diversity) * streak_mult * rolling_mult)
    return ActivityBreakdown(
        activity=activity,
        base=base,
        diversity=diversity,
        streak_days=streak,
        streak_mult=streak_mult,
        rolling_mult=rolling_mult,
        rolling_active_days=rolling_active,
    )
