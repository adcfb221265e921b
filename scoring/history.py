"""Scores as of a past date, and a backfill of score history from them.

``score_as_of`` answers "what was this member's score at the end of that day?" with the
same formula the score batch uses (``scoring.formula.activity_score``), fed with only what
had happened by then: the member's processed ``cli_invocation`` events dated up to that day
(dated as the consumer dates them: ``startedAt``, else the event's timestamp) and the award
points in force then, which the caller supplies (awards live in the ``awards`` app, which
builds on this one). ``score_history_backfill`` writes those scores as ``ScoreHistory``
rows, for a member's past active days before their first recorded row: for demo data, and
for members whose events arrived before scoring did.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction

from scoring.formula import activity_score
from scoring.formula_settings import scoring_constants
from scoring.metrics import CLI_INVOCATION, command_group, event_time
from scoring.models import ScoreHistory, TelemetryEvent
from scoring.tiers import tier_for_total
from swampclub.dialect import insert_rows

# Award points in force for (member id, end of day): supplied by the caller.
AwardPointsAsOf = Callable[[int, datetime], int]


@dataclass(frozen=True)
class ScoreAsOf:
    """A member's score at the end of ``day`` (UTC)."""

    member_id: int
    day: date
    activity_score: int
    award_points: int
    total_score: int
    tier: int
    streak_days: int


def end_of_day(day: date) -> datetime:
    """The last second of ``day`` in UTC: when a score "as of" that day is recorded."""
    return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)


def _member_activity(member_ids: Iterable[int]) -> dict[int, list[tuple[date, str]]]:
    """(UTC day, command group) of each processed invocation, per member, oldest first."""
    activity: dict[int, list[tuple[date, str]]] = {}
    events = (
        TelemetryEvent.objects.filter(member_id__in=list(member_ids), event=CLI_INVOCATION)
        .processed()
        .order_by()
        .values_list("member_id", "timestamp", "properties")
    )
    for member_id, timestamp, properties in events.iterator(chunk_size=5000):
        group = command_group(properties)
        if group is not None:  # the consumer rejects these; they never counted
            day = event_time(properties, timestamp).date()
            activity.setdefault(member_id, []).append((day, group))
    for rows in activity.values():
        rows.sort()
    return activity


def _scores_over_days(
    member_id: int,
    activity: list[tuple[date, str]],
    days: Iterable[date],
    award_points_as_of: AwardPointsAsOf | None,
) -> list[ScoreAsOf]:
    """The member's score at the end of each of ``days`` (ascending), folding the events
    in once: each day's counts and active dates are those of the events up to that day."""
    constants = scoring_constants()
    counts: Counter[str] = Counter()
    active: set[date] = set()
    index = 0
    results = []
    for day in days:
        while index < len(activity) and activity[index][0] <= day:
            event_day, group = activity[index]
            counts[group] += 1
            active.add(event_day)
            index += 1
        breakdown = activity_score(
            event_counts=counts, active_dates=active, as_of=day, constants=constants
        )
        awards = award_points_as_of(member_id, end_of_day(day)) if award_points_as_of else 0
        total = breakdown.activity + awards
        results.append(
            ScoreAsOf(
                member_id=member_id,
                day=day,
                activity_score=breakdown.activity,
                award_points=awards,
                total_score=total,
                tier=tier_for_total(total).ordinal,
                streak_days=breakdown.streak_days,
            )
        )
    return results


def score_as_of(
    *, member_id: int, day: date, award_points_as_of: AwardPointsAsOf | None = None
) -> ScoreAsOf:
    """The member's score at the end of ``day`` (UTC), by the SPEC §6 formula.

    Counts only the member's processed ``cli_invocation`` events dated on or before ``day``;
    award points come from ``award_points_as_of(member_id, end of day)`` (0 without it).
    Reads only; two queries.
    """
    activity = _member_activity([member_id]).get(member_id, [])
    return _scores_over_days(member_id, activity, [day], award_points_as_of)[0]


def score_history_backfill(
    *,
    member_ids: Iterable[int],
    until: date,
    award_points_as_of: AwardPointsAsOf | None = None,
) -> int:
    """Record each member's past scores as ``ScoreHistory``; returns the rows written.

    For every day from the member's first active day up to ``until`` (exclusive) and before
    the day of their first recorded history row, the score as of that day's end
    (``score_as_of``) is written at that moment when it differs from the day before — the
    same "a row each time the total changes" rule the score batch follows. Days already
    covered by recorded history are never rewritten, so running it again writes nothing.
    Atomic; a constant number of queries plus one insert.
    """
    ids = sorted({int(i) for i in member_ids})
    if not ids:
        return 0
    activity = _member_activity(ids)
    first_recorded: dict[int, date] = {}
    for member_id, recorded_at in (
        ScoreHistory.objects.filter(member_id__in=ids)
        .order_by("member_id", "recorded_at")
        .values_list("member_id", "recorded_at")
    ):
        first_recorded.setdefault(member_id, recorded_at.astimezone(UTC).date())
    rows = []
    for member_id in ids:
        events = activity.get(member_id)
        if not events:
            continue
        stop = min(until, first_recorded.get(member_id, until))
        start = events[0][0]
        days = [start + timedelta(days=n) for n in range((stop - start).days)]
        previous = None
        for score in _scores_over_days(member_id, events, days, award_points_as_of):
            if score.total_score != previous:
                rows.append(
                    (
                        member_id,
                        end_of_day(score.day),
                        score.activity_score,
                        score.award_points,
                        score.total_score,
                        score.tier,
                    )
                )
                previous = score.total_score
    with transaction.atomic():
        insert_rows(
            ScoreHistory,
            ["member_id", "recorded_at", "activity_score", "award_points", "total_score", "tier"],
            rows,
        )
    return len(rows)
