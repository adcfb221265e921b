"""What a score refresh reads and computes: score rows from metrics, without ORM objects.

``scoring.scores`` orchestrates (locks, writes, results); this module holds the row layout,
the reads (the locked score rows, the members' metrics) and the formula applied over a
batch. The metrics are read with one plain query and their JSON decoded once; the stored
inputs (``breakdown``) are rebuilt from the metrics' own JSON text, so a written row costs
no ``json.dumps`` of its counts.
"""

import json
from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime

from django.db import connection

from scoring.formula import ScoringConstants, activity_from_days, day_numbers
from scoring.models import MemberMetrics, UserScore
from scoring.rules import rules_in_force
from scoring.tiers import tiers_all
from swampclub.dialect import IdArray, ids_in

SCORE_COLUMNS = [
    "member_id",
    "username",
    "activity_score",
    "award_points",
    "total_score",
    "tier",
    "streak_days",
    "active_days",
    "computed_at",
    "rules_version",
    "as_of",
    "breakdown",
]
HISTORY_COLUMNS = [
    "member_id",
    "recorded_at",
    "activity_score",
    "award_points",
    "total_score",
    "tier",
    "rules_version",
]
CLAIM_COLUMNS = ["member_id", "tier", "claimed_at", "total_at_claim"]
CHANGE_COLUMNS = ["member_id", "from_tier", "to_tier", "cause", "total_score", "changed_at"]

# What a score row holds besides its key and ``computed_at``: a refresh that computes
# exactly these values again leaves the row alone. ``as_of`` is one of them, so a row whose
# figures are the same as yesterday's is still rewritten (``as_of`` and ``computed_at``
# move on) when refreshed on a new day: the stored ``as_of`` is always the day of the last
# refresh, as the explain endpoint reports it.
SCORE_VALUES = [c for c in SCORE_COLUMNS if c not in ("member_id", "computed_at")]
BREAKDOWN = SCORE_VALUES.index("breakdown")
# Positions in a values tuple (``SCORE_VALUES`` order).
ACTIVITY, AWARDS, TOTAL, TIER = 1, 2, 3, 4


@dataclass(frozen=True)
class Rules:
    """The rules a refresh scores with, and the overrides as they read back once stored."""

    version: int
    constants: ScoringConstants
    overrides: dict | None
    # The overrides as JSON text, ready to be spliced into a row's inputs.
    overrides_json: str
    # The tiers' floors (ascending) and ordinals, read once per refresh.
    floors: tuple[int, ...] = ()
    ordinals: tuple[int, ...] = ()

    def tier(self, total: int) -> int:
        """The tier ordinal of ``total``, as ``scoring.tiers.tier_for_total`` gives it."""
        return self.ordinals[max(bisect_right(self.floors, total) - 1, 0)]

    @classmethod
    def in_force(cls) -> "Rules":
        """The rules version in force now (read it after taking the score-row locks)."""
        rules = rules_in_force()
        text = json.dumps(rules.overrides) if rules.overrides is not None else ""
        # Stored as JSON: compare what will read back (lists, string keys), not the original.
        overrides = None if rules.overrides is None else json.loads(text)
        tiers = tiers_all()
        return cls(
            rules.version,
            rules.constants,
            overrides,
            text,
            tuple(t.floor for t in tiers),
            tuple(t.ordinal for t in tiers),
        )


def scores_lock(member_ids: list[int]) -> dict[int, tuple[tuple, str]]:
    """Lock these members' score rows (``FOR UPDATE``, member id order); member id →
    (stored values in ``SCORE_VALUES`` order, the member's current username)."""
    if not member_ids:
        return {}
    return {
        member_id: (tuple(stored), live_username)
        for member_id, *stored, live_username in UserScore.objects.select_for_update(of=("self",))
        .filter(member_id__in_ids=IdArray(member_ids))
        .order_by("member_id")
        .values_list("member_id", *SCORE_VALUES, "member__username")
    }


# The metrics a score reads: (event counts, their JSON text, the active dates as sorted
# distinct day numbers, award points).
Metrics = tuple[dict, str, list[int], int]
_NO_METRICS: Metrics = ({}, "{}", [], 0)


def metrics_read(member_ids: list[int]) -> dict[int, Metrics]:
    """member id → ``Metrics`` of those with a metrics row: one plain query, the counts'
    JSON decoded once and the active dates read straight from their JSON text into day
    numbers (``days_from_json``); no model instances, no per-field converters."""
    if not member_ids:
        return {}
    quote = connection.ops.quote_name
    where, params = ids_in("member_id", member_ids)
    loads = json.loads
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT member_id, event_counts, active_dates, award_points "  # noqa: S608
            f"FROM {quote(MemberMetrics._meta.db_table)} WHERE {where}",
            params,
        )
        return {
            member_id: (loads(counts), counts, days_from_json(dates), points)
            for member_id, counts, dates, points in cursor.fetchall()
        }


# ISO date → day number, shared by every batch: the same few hundred dates recur.
_ORDINALS: dict[str, int] = {}


def days_from_json(text: str) -> list[int]:
    """A stored ``active_dates`` JSON text as sorted distinct day numbers (``day_numbers``).

    Both databases write a list of ISO dates as ``["2026-11-24", "2026-11-25"]``; that text
    is split as it is, with no JSON decoding and each date parsed once per process. Any
    other text (another spacing, escapes, not a date) goes through ``json.loads`` and
    ``day_numbers``, which accept or reject exactly what the formula does.
    """
    if text == "[]":
        return []
    if text[:2] == '["' and text[-2:] == '"]':
        ordinals = _ORDINALS
        try:
            days = {
                ordinals.get(d) or ordinals.setdefault(d, date.fromisoformat(d).toordinal())
                for d in text[2:-2].split('", "')
            }
        except ValueError:
            pass
        else:
            return sorted(days)
    return day_numbers(json.loads(text))


def score_values(username: str, metrics: Metrics | None, *, as_of: date, rules: Rules) -> tuple:
    """The score row's values (``SCORE_VALUES`` order) computed from ``metrics``; the
    inputs (``breakdown``) as a dict, as they read back once stored."""
    event_counts, _, days, award_points = metrics or _NO_METRICS
    breakdown = activity_from_days(
        event_counts=event_counts, days=days, as_of=as_of, constants=rules.constants
    )
    total = breakdown.activity + award_points
    # The formula's date-free inputs: with the version (and any overrides) they reproduce
    # this activity exactly, whatever the date it is explained on.
    inputs = {"counts": event_counts, "rolling_days": breakdown.rolling_active_days}
    if rules.overrides is not None:
        inputs["constants"] = rules.overrides
    return (
        username,
        breakdown.activity,
        award_points,
        total,
        rules.tier(total),
        breakdown.streak_days,
        len(days),
        rules.version,
        as_of,
        inputs,
    )


def inputs_json(metrics: Metrics | None, values: tuple, rules: Rules) -> str:
    """The row's inputs as JSON text, built from the metrics' own JSON text (the counts are
    not encoded again)."""
    counts_text = (metrics or _NO_METRICS)[1]
    rolling = values[BREAKDOWN]["rolling_days"]
    extra = f', "constants": {rules.overrides_json}' if rules.overrides is not None else ""
    return f'{{"counts": {counts_text}, "rolling_days": {rolling}{extra}}}'


def score_row(member_id: int, values: tuple, now: datetime, breakdown: str) -> tuple:
    """A full ``SCORE_COLUMNS`` row, the inputs given as JSON text."""
    username, activity, awards, total, tier, streak, active, version, as_of, _ = values
    return (
        member_id,
        username,
        activity,
        awards,
        total,
        tier,
        streak,
        active,
        now,
        version,
        as_of,
        breakdown,
    )
