"""Recompute every member's metrics and score from scratch, and compare with what is stored.

The replay reads only the primary records — ``TelemetryEvent`` rows the consumer marked
processed and ``Award`` rows with their revocations — and folds them again in plain Python,
independently of the consumer's SQL: counts per command group, UTC active dates,
``total_events``, award points of unrevoked awards; then the activity score through the pure
``scoring.formula`` as of the day each score was computed. Any difference from
``MemberMetrics``/``UserScore`` is a lost, doubled or half-applied piece of work.
"""

from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from io import StringIO
from typing import Any

from django.core.management import CommandError, call_command

from awards.models import Award
from scoring.formula import activity_score
from scoring.formula_settings import scoring_constants
from scoring.models import (
    MemberMetrics,
    MetricsSnapshot,
    TelemetryEvent,
    TierBadgeClaim,
    UserScore,
)
from scoring.tiers import tier_for_total, tiers_all


def _utc_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def replay_metrics() -> dict[int, dict[str, Any]]:
    """Per member id: the metrics a single clean pass over the stored records gives."""
    fold: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"event_counts": Counter(), "active_dates": set(), "total_events": 0}
    )
    events = (
        TelemetryEvent.objects.filter(event="cli_invocation")
        .processed()
        .values_list("member_id", "properties", "timestamp")
    )
    for member_id, properties, timestamp in events.iterator(chunk_size=5000):
        invocation = properties.get("invocation") or {}
        group = str(invocation.get("command", "")).lower()
        day = _utc_date(properties.get("startedAt")) or timestamp.astimezone(UTC).date()
        member = fold[member_id]
        member["event_counts"][group] += 1
        member["active_dates"].add(day)
        member["total_events"] += 1

    award_points: Counter[int] = Counter()
    unrevoked = Award.objects.filter(revocation__isnull=True).values_list("recipient_id", "points")
    for recipient_id, points in unrevoked:
        award_points[recipient_id] += points

    result: dict[int, dict[str, Any]] = {}
    for member_id in set(fold) | set(award_points):
        member = fold[member_id]
        result[member_id] = {
            "event_counts": dict(member["event_counts"]),
            "active_dates": sorted(d.isoformat() for d in member["active_dates"]),
            "total_events": member["total_events"],
            "award_points": award_points[member_id],
        }
    return result


def replay_mismatches() -> list[str]:
    """Every difference between the stored ledger and a replay of the primary records.

    Also reports work left undone (pending events or snapshots), so callers assert on one
    list: empty means every accepted event counted exactly once and every score is what a
    clean run computes.
    """
    problems: list[str] = []
    pending_events = TelemetryEvent.objects.pending().count()
    if pending_events:
        problems.append(f"{pending_events} events still pending")
    pending_snapshots = MetricsSnapshot.objects.filter(processed_at__isnull=True).count()
    if pending_snapshots:
        problems.append(f"{pending_snapshots} snapshots still pending")

    expected = replay_metrics()
    stored = {
        row["member_id"]: row
        for row in MemberMetrics.objects.values(
            "member_id", "event_counts", "active_dates", "total_events", "award_points"
        )
    }
    for member_id in sorted(set(expected) | set(stored)):
        want = expected.get(
            member_id,
            {"event_counts": {}, "active_dates": [], "total_events": 0, "award_points": 0},
        )
        have = stored.get(member_id)
        if have is None:
            problems.append(f"member {member_id}: no MemberMetrics, expected {want}")
            continue
        have_counts = {g: c for g, c in have["event_counts"].items() if c}
        for field, value in (
            ("event_counts", have_counts),
            ("active_dates", sorted(have["active_dates"])),
            ("total_events", have["total_events"]),
            ("award_points", have["award_points"]),
        ):
            if value != want[field]:
                problems.append(
                    f"member {member_id}: {field} stored {value!r}, replay {want[field]!r}"
                )

    constants = scoring_constants()
    scores = {score.member_id: score for score in UserScore.objects.all()}
    claims: dict[int, set[int]] = defaultdict(set)
    for member_id, tier in TierBadgeClaim.objects.values_list("member_id", "tier"):
        claims[member_id].add(tier)
    for member_id, want in sorted(expected.items()):
        score = scores.get(member_id)
        if score is None:
            problems.append(f"member {member_id}: no UserScore")
            continue
        breakdown = activity_score(
            event_counts=want["event_counts"],
            active_dates=want["active_dates"],
            as_of=score.computed_at.astimezone(UTC).date(),
            constants=constants,
        )
        total = breakdown.activity + want["award_points"]
        tier = tier_for_total(total).ordinal
        for field, value, replayed in (
            ("activity_score", score.activity_score, breakdown.activity),
            ("award_points", score.award_points, want["award_points"]),
            ("total_score", score.total_score, total),
            ("tier", score.tier, tier),
            ("streak_days", score.streak_days, breakdown.streak_days),
        ):
            if value != replayed:
                problems.append(f"member {member_id}: {field} stored {value}, replay {replayed}")
        reached = {t.ordinal for t in tiers_all() if t.ordinal <= tier}
        missing_claims = reached - claims[member_id]
        if missing_claims:
            problems.append(f"member {member_id}: tier claims missing {sorted(missing_claims)}")
    return problems


def assert_ledger_consistent() -> None:
    """``check_ledger`` passes and the stored totals equal a replay from the stored records."""
    out, err = StringIO(), StringIO()
    try:
        call_command("check_ledger", stdout=out, stderr=err)
    except (CommandError, SystemExit) as exc:  # exit status 1, listing each mismatch
        message = f"check_ledger failed: {exc}\n{out.getvalue()}{err.getvalue()}"
        raise AssertionError(message) from exc
    problems = replay_mismatches()
    assert not problems, "ledger differs from a replay:\n" + "\n".join(problems)
