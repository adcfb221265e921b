"""The activity score (SPEC §6) as pure functions: no Django, no database, no clock.

Every step is exact (``fractions.Fraction``) and the result is floored once at the end, so
``floor(1500 * 27/25 * 13/12)`` is 1755 and never 1754.9999… on some machine. Constants come
in as a :class:`ScoringConstants`; ``scoring.formula_settings`` builds one from
``settings.SCORING``.

Dates are UTC calendar dates; ``active_dates`` may hold ``date`` objects or ISO strings (as
stored in ``MemberMetrics.active_dates``). Dates after ``as_of`` are ignored for the streak
and the rolling window: a score "as of" a day never sees the future (a CLI clock running
ahead only counts once that day arrives). They still count nothing twice: dates are a set.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from fractions import Fraction
from functools import lru_cache
from typing import Any


@dataclass(frozen=True)
class ScoringConstants:
    """Every constant of the formula, as exact numbers (names as in ``settings.SCORING``)."""

    # Whole numbers are kept as ints so the common case is integer arithmetic.
    base_points: Fraction | int = 10
    group_cap: Fraction | int = 1000
    # Per-group caps overriding ``group_cap`` (lower-cased group name → cap).
    group_caps: Mapping[str, Fraction | int] = field(default_factory=dict)
    diversity_bonus: Fraction | int = 50
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


def _whole_as_int(value: Fraction) -> Fraction | int:
    return value.numerator if value.denominator == 1 else value


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


def constants_from_mapping(
    overrides: Mapping[str, Any], base: "ScoringConstants | None" = None
) -> ScoringConstants:
    """``base`` (default: the SPEC §6 constants) with ``overrides`` (``settings.SCORING``
    keys) applied.

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
                value: Any = {str(g).lower(): _whole_as_int(exact(v)) for g, v in dict(raw).items()}
                if any(v < 0 for v in value.values()):
                    raise ValueError("caps must not be negative")
            elif kind == "int":
                value = int(raw)
                if value != raw or value < 1:
                    raise ValueError("must be a whole number ≥ 1")
            else:
                value = _whole_as_int(exact(raw))
                if value < 0:
                    raise ValueError("must not be negative")
        except (TypeError, ValueError) as exc:
            raise ValueError(f"SCORING[{key!r}]: {exc}") from exc
        values[attribute] = value
    return replace(base, **values) if base is not None else ScoringConstants(**values)


def constants_as_mapping(constants: ScoringConstants) -> dict[str, Any]:
    """``constants`` as ``settings.SCORING`` keys with exact text values (``"1/50"``,
    ``"0.02"`` or ``"10"``): JSON-safe, and ``constants_from_mapping`` reads it back equal."""
    out: dict[str, Any] = {}
    for key, (attribute, kind) in _SETTING_KEYS.items():
        value = getattr(constants, attribute)
        if kind == "caps":
            out[key] = {g: exact_text(v) for g, v in sorted(value.items())}
        elif kind == "int":
            out[key] = int(value)
        else:
            out[key] = exact_text(value)
    return out


def exact_text(value: Fraction | int) -> str:
    """An exact number as text: a decimal when it has one (``"1.04"``, ``"10"``), else a
    fraction (``"16/15"``). ``exact()`` reads either form back to the same Fraction."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    # A fraction in lowest terms has a finite decimal iff its denominator is 2^a x 5^b.
    d, twos, fives = value.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10**places // value.denominator
    sign = "-" if value < 0 else ""
    whole, frac = divmod(scaled, 10**places)
    return f"{sign}{whole}.{frac:0{places}d}".rstrip("0").rstrip(".")


DEFAULT_CONSTANTS = ScoringConstants()


@dataclass(frozen=True, slots=True)
class ActivityBreakdown:
    """The activity score and every intermediate value that produced it.

    The multipliers are kept as integer numerator/denominator pairs and only turned into
    ``Fraction`` when read: the score batch reads ``activity`` and ``streak_days`` of
    thousands of breakdowns, and building four Fractions each cost more than the formula.
    """

    activity: int
    streak_days: int
    rolling_active_days: int
    _base: Fraction | int
    _diversity: Fraction | int
    _streak: tuple[int, int]
    _rolling: tuple[int, int]

    @property
    def base(self) -> Fraction:
        """Σ over groups of min(count x BASE_POINTS, cap of the group)."""
        return Fraction(self._base)

    @property
    def diversity(self) -> Fraction:
        """DIVERSITY_BONUS x groups with at least one event."""
        return Fraction(self._diversity)

    @property
    def streak_mult(self) -> Fraction:
        """min(1 + STREAK_STEP x (streak - 1), STREAK_MAX)."""
        return Fraction(*self._streak)

    @property
    def rolling_mult(self) -> Fraction:
        """1 + ROLLING_BONUS x active days in the window / ROLLING_DAYS."""
        return Fraction(*self._rolling)


@lru_cache(maxsize=8192)
def _iso_ordinal(value: str) -> int:
    # The same few hundred ISO dates recur across every member of a batch.
    return date.fromisoformat(value).toordinal()


def _day_numbers(active_dates: Iterable[date | str], as_of: date) -> list[int]:
    """The distinct active dates up to ``as_of`` as sorted day numbers (``toordinal``)."""
    until = as_of.toordinal()
    days = set()
    for value in active_dates:
        day = _iso_ordinal(value) if isinstance(value, str) else value.toordinal()
        if day <= until:
            days.add(day)
    return sorted(days)


def day_numbers(active_dates: Iterable[date | str]) -> list[int]:
    """Every distinct active date (future ones included) as sorted day numbers
    (``toordinal``): what ``activity_from_days`` takes."""
    return sorted({_iso_ordinal(v) if isinstance(v, str) else v.toordinal() for v in active_dates})


def streak_days(*, active_dates: Iterable[date | str], as_of: date) -> int:
    """Consecutive active days ending at the latest active date, if that is ``as_of`` or
    the day before; otherwise 0 (the streak is broken). Dates after ``as_of`` are ignored."""
    days = _day_numbers(active_dates, as_of)
    return _streak(days, as_of.toordinal(), len(days))


def _streak(days: Sequence[int], until: int, end: int) -> int:
    """The run of consecutive days ending at ``days[end - 1]`` (the latest day up to
    ``until``), if that is ``until`` or the day before; else 0."""
    if not end or days[end - 1] < until - 1:
        return 0
    run, index = 1, end - 1
    while index > 0 and days[index - 1] == days[index] - 1:
        run += 1
        index -= 1
    return run


def _ratio(value: Fraction | int) -> tuple[int, int]:
    if isinstance(value, int):
        return value, 1
    return value.numerator, value.denominator


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
    contribute nothing (neither base nor diversity). The product is computed as one integer
    numerator over one integer denominator and floored by integer division: exact, and
    fast enough for a batch of tens of thousands of members.
    """
    return activity_from_days(
        event_counts=event_counts,
        days=_day_numbers(active_dates, as_of),
        as_of=as_of,
        constants=constants,
    )


def activity_from_days(
    *,
    event_counts: Mapping[str, int],
    days: Sequence[int],
    as_of: date,
    constants: ScoringConstants = DEFAULT_CONSTANTS,
) -> ActivityBreakdown:
    """``activity_score`` from the active dates as sorted distinct day numbers
    (``day_numbers``; days after ``as_of`` may be included, they are ignored): the score
    batch reads them ready-made, with no date to parse per member."""
    until = as_of.toordinal()
    end = bisect_right(days, until)
    streak = _streak(days, until, end)
    rolling_active = end - bisect_left(days, until - constants.rolling_days + 1, 0, end)
    return activity_from_inputs(
        event_counts=event_counts,
        streak_days=streak,
        rolling_active_days=rolling_active,
        constants=constants,
    )


def activity_from_inputs(
    *,
    event_counts: Mapping[str, int],
    streak_days: int,
    rolling_active_days: int,
    constants: ScoringConstants = DEFAULT_CONSTANTS,
    groups_out: list[tuple[str, int, Fraction | int, Fraction | int]] | None = None,
) -> ActivityBreakdown:
    """The activity score from the formula's date-free inputs: the counts per group, the
    streak and the active days in the rolling window (``activity_score`` derives the last
    two from the active dates and ``as_of``). The one place the formula is written, so a
    stored score and its explanation can never disagree.

    With ``groups_out``, appends ``(group, count, count x BASE_POINTS, capped points)`` for
    each group that counts (count > 0), in the order of ``event_counts``.
    """
    c = constants
    base: Fraction | int = 0
    groups = 0
    for group, count in event_counts.items():
        if count <= 0:
            continue
        groups += 1
        cap = c.group_caps.get(group.lower(), c.group_cap) if c.group_caps else c.group_cap
        points = count * c.base_points
        capped = min(points, cap)
        base += capped
        if groups_out is not None:
            groups_out.append((group, count, points, capped))
    diversity = c.diversity_bonus * groups

    streak = streak_days
    step_n, step_d = _ratio(c.streak_step)
    max_n, max_d = _ratio(c.streak_max)
    # 1 + step x (streak - 1) = (step_d + step_n x (streak - 1)) / step_d, capped at max.
    streak_n, streak_d = step_d + step_n * max(streak - 1, 0), step_d
    if streak_n * max_d > max_n * streak_d:
        streak_n, streak_d = max_n, max_d

    rolling_active = rolling_active_days
    bonus_n, bonus_d = _ratio(c.rolling_bonus)
    # 1 + bonus x active / days = (bonus_d x days + bonus_n x active) / (bonus_d x days).
    rolling_n = bonus_d * c.rolling_days + bonus_n * rolling_active
    rolling_d = bonus_d * c.rolling_days

    sum_n, sum_d = _ratio(base + diversity)
    activity = (sum_n * streak_n * rolling_n) // (sum_d * streak_d * rolling_d)
    return ActivityBreakdown(
        activity=activity,
        streak_days=streak,
        rolling_active_days=rolling_active,
        _base=base,
        _diversity=diversity,
        _streak=(streak_n, streak_d),
        _rolling=(rolling_n, rolling_d),
    )
