"""Scores: ``scores_refresh`` (the one function that writes scores) and the score batch.

Lock order, for the whole project (no cycles, so no deadlocks between these paths):

- an award grant/revocation updates ``MemberMetrics`` (row lock) and then calls
  ``scores_refresh``, which locks the member's ``UserScore`` row;
- the score batch locks ``UserScore`` rows (ordered by member id) and then *reads*
  ``MemberMetrics`` without locking them;
- the consumer locks ``MemberMetrics`` rows and never touches ``UserScore``.
"""

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models.constants import OnConflict
from django.utils import timezone

from scoring.columns import column, field_column
from scoring.formula import ScoringConstants, activity_score
from scoring.models import (
    MemberMetrics,
    MetricsSnapshot,
    ScoreHistory,
    TierBadgeClaim,
    TierChange,
    UserScore,
)
from scoring.outbox import outbox_tier_changes
from scoring.pipeline import RunKind, pipeline_run_record
from scoring.rules import rules_in_force
from scoring.tiers import tier_for_total, tiers_all
from swampclub.dialect import (
    IdArray,
    ids_in,
    insert_rows,
    is_postgresql,
    pg_insert_arrays,
    pg_update_arrays,
    upsert_rows,
)


@dataclass(frozen=True)
class ScoreResult:
    """What one refresh did to one member's score."""

    member_id: int
    previous_total: int
    total_score: int
    activity_score: int
    award_points: int
    previous_tier: int
    tier: int
    # Tier ordinals newly claimed in this refresh, lowest first.
    new_claims: tuple[int, ...]

    @property
    def tier_changed(self) -> bool:
        """True when this refresh moved the member's tier (and recorded a TierChange)."""
        return self.tier != self.previous_tier


_SCORE_COLUMNS = [
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
_HISTORY_COLUMNS = [
    "member_id",
    "recorded_at",
    "activity_score",
    "award_points",
    "total_score",
    "tier",
    "rules_version",
]
_CLAIM_COLUMNS = ["member_id", "tier", "claimed_at", "total_at_claim"]
_CHANGE_COLUMNS = ["member_id", "from_tier", "to_tier", "cause", "total_score", "changed_at"]


def utc_today() -> date:
    """Today's date in UTC (the formula's default ``as_of``)."""
    return datetime.now(UTC).date()


# What a score row holds besides its key and ``computed_at``: a refresh that computes
# exactly these values again leaves the row alone. ``as_of`` is one of them, so a row whose
# figures are the same as yesterday's is still rewritten (``as_of`` and ``computed_at``
# move on) when refreshed on a new day: the stored ``as_of`` is always the day of the last
# refresh, as the explain endpoint reports it.
_SCORE_VALUES = [c for c in _SCORE_COLUMNS if c not in ("member_id", "computed_at")]
_BREAKDOWN = _SCORE_VALUES.index("breakdown")


def _scores_lock(member_ids: list[int]) -> dict[int, tuple[tuple, str]]:
    """Lock these members' score rows; member id → (stored values in ``_SCORE_VALUES``
    order, the member's current username)."""
    if not member_ids:
        return {}
    return {
        member_id: (tuple(stored), live_username)
        for member_id, *stored, live_username in UserScore.objects.select_for_update(of=("self",))
        .filter(member_id__in_ids=IdArray(member_ids))
        .order_by("member_id")
        .values_list("member_id", *_SCORE_VALUES, "member__username")
    }


def _metrics_read(member_ids: list[int]) -> dict[int, tuple]:
    """member id → (event_counts, active_dates, award_points) of those with metrics."""
    if not member_ids:
        return {}
    return {
        member_id: tuple(row)
        for member_id, *row in MemberMetrics.objects.filter(
            member_id__in_ids=IdArray(member_ids)
        ).values_list("member_id", "event_counts", "active_dates", "award_points")
    }


@dataclass(frozen=True)
class _Rules:
    """The rules a refresh scores with, and the overrides as they read back once stored."""

    version: int
    constants: ScoringConstants
    overrides: dict | None

    @classmethod
    def in_force(cls) -> "_Rules":
        rules = rules_in_force()
        # Stored as JSON: compare what will read back (lists, string keys), not the original.
        overrides = None if rules.overrides is None else json.loads(json.dumps(rules.overrides))
        return cls(rules.version, rules.constants, overrides)


def _score_values(username: str, metrics: tuple | None, *, as_of: date, rules: _Rules) -> tuple:
    """The score row's values (``_SCORE_VALUES`` order) computed from ``metrics``."""
    event_counts, active_dates, award_points = metrics if metrics else ({}, [], 0)
    breakdown = activity_score(
        event_counts=event_counts,
        active_dates=active_dates,
        as_of=as_of,
        constants=rules.constants,
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
        tier_for_total(total).ordinal,
        breakdown.streak_days,
        len(set(active_dates)),
        rules.version,
        as_of,
        inputs,
    )


def _score_row(member_id: int, values: tuple, now: datetime, *, postgresql: bool) -> tuple:
    """A full ``_SCORE_COLUMNS`` row; the inputs as JSON text for PostgreSQL's arrays."""
    if postgresql:
        values = (*values[:_BREAKDOWN], json.dumps(values[_BREAKDOWN]))
    row = dict(zip(_SCORE_VALUES, values, strict=True))
    row["member_id"], row["computed_at"] = member_id, now
    return tuple(row[c] for c in _SCORE_COLUMNS)


def _zero_rows_insert(member_ids: list[int], now: datetime) -> None:
    """Give each existing user of ``member_ids`` without a score row a row of zeros (the
    portable first-row path): one ``INSERT OR IGNORE ... SELECT`` from the user table, so
    unknown ids insert nothing and the users need no read of their own."""
    quote = connection.ops.quote_name
    score, user = UserScore._meta, get_user_model()._meta
    columns = ", ".join(quote(column(UserScore, c)) for c in _SCORE_COLUMNS)
    pk, username = quote(field_column(user.pk)), quote(field_column(user.get_field("username")))
    where, params = ids_in(pk, member_ids)
    insert = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert} {quote(score.db_table)} ({columns}) "  # noqa: S608 - metadata names
            f"SELECT {pk}, {username}, 0, 0, 0, 1, 0, 0, %s, 1, NULL, NULL "
            f"FROM {quote(user.db_table)} WHERE {where}",
            [connection.ops.adapt_datetimefield_value(now), *params],
        )


def scores_refresh(
    *,
    member_ids: Iterable[int],
    cause: str = TierChange.Cause.ACTIVITY,
    as_of: date | None = None,
) -> dict[int, ScoreResult]:
    """Recompute the score of each member from their current metrics and write it.

    For each existing member in ``member_ids``: activity by the SPEC §6 formula as of
    ``as_of`` (default: today, UTC), total = activity + ``MemberMetrics.award_points``, tier
    by ``tier_for_total``, under the rules version in force (``scoring.rules``). Writes
    ``UserScore`` with what the activity was computed from (rules version, ``as_of``, the
    formula's inputs; see ``scoring.explain``) when any of its values changed — a row that
    would be rewritten with the same values (username, figures, version, ``as_of`` and
    inputs) is left alone, ``computed_at`` included; a ``ScoreHistory`` row (with the
    version) only when the total changed; a ``TierBadgeClaim`` for every tier up to the new
    one not claimed yet; exactly one ``TierChange`` (with ``cause``, and its ``tier.changed``
    outbox event) when the tier moved. A member without metrics scores 0. Unknown member
    ids are ignored. Returns the result per member id.

    Guarantees:
    - atomic: runs in ``transaction.atomic()`` (a savepoint when nested), all or nothing;
    - serialized per member: existing score rows are locked (``SELECT ... FOR UPDATE``, in
      member id order) *before* the rules and metrics are read, so two refreshes of one
      member run one after the other and the second sees the first's result — a tier move
      is recorded once;
    - a member's first score row is inserted with ``ON CONFLICT DO NOTHING``; if another
      refresh created the row meanwhile, the insert waits for it and does nothing, and the
      member is then locked and computed like an existing one (with the rules read again).
      On PostgreSQL the first row is computed from metrics read just before the insert: any
      grant or revocation committed after that read refreshes the member itself, and its
      refresh waits for this row and recomputes. Elsewhere a row of zeros is inserted
      first, then locked;
    - reads ``MemberMetrics`` at the latest under that lock, never a snapshot's copy: an
      award committed after a snapshot was queued still counts;
    - a constant number of queries, whatever the number of members.
    """
    wanted = sorted({int(member_id) for member_id in member_ids})
    if not wanted:
        return {}
    cause = str(cause)  # the plain value: a driver may encode an enum member by its name
    now = timezone.now()
    as_of = as_of or utc_today()
    tier_ordinals = [t.ordinal for t in tiers_all()]
    postgresql = is_postgresql()

    with transaction.atomic():
        # Lock the existing score rows (member id order, so concurrent refreshes of
        # overlapping members cannot deadlock); the join brings the current username along.
        current = _scores_lock(wanted)
        missing = [i for i in wanted if i not in current]
        if missing and not postgresql:
            # A member's first refresh creates the row, then locks it like the others: a
            # row inserted meanwhile by a concurrent refresh is waited for and read after
            # that refresh commits, never overwritten from stale zeros.
            _zero_rows_insert(missing, now)
            current.update(_scores_lock(missing))
            missing = []
        users: dict[int, str] = {}
        if missing:
            users = dict(
                get_user_model()
                .objects.filter(pk__in_ids=IdArray(missing))
                .order_by("pk")
                .values_list("pk", "username")
            )
        # Read after the lock, like the metrics: a rescore activates its version before it
        # locks anyone, so a refresh holding a lock it waited for sees the new version.
        rules = _Rules.in_force()
        # member id → (computed values, stored values or None for a row this refresh created)
        computed: dict[int, tuple[tuple, tuple | None]] = {}
        if users:
            metrics = _metrics_read(list(users))
            fresh = {
                i: _score_values(name, metrics.get(i), as_of=as_of, rules=rules)
                for i, name in users.items()
            }
            created = pg_insert_arrays(
                UserScore,
                _SCORE_COLUMNS,
                [_score_row(i, v, now, postgresql=True) for i, v in fresh.items()],
                on_conflict="ON CONFLICT DO NOTHING",
                returning="member_id",
            )
            computed.update((i, (fresh[i], None)) for i in created)
            lost = [i for i in users if i not in computed]
            if lost:
                # Created by a concurrent refresh meanwhile: lock and recompute below, with
                # the rules read again (that refresh may have been a rescore's).
                current.update(_scores_lock(lost))
                rules = _Rules.in_force()
        # Read only after the lock: whatever committed before we got it is included.
        metrics = _metrics_read(sorted(current))
        for member_id, (stored, username) in current.items():
            values = _score_values(username, metrics.get(member_id), as_of=as_of, rules=rules)
            computed[member_id] = (values, stored)
        ids = sorted(computed)
        if not ids:
            return {}
        usernames = {member_id: computed[member_id][0][0] for member_id in ids}
        claimed: dict[int, set[int]] = defaultdict(set)
        claims_read = TierBadgeClaim.objects.filter(member_id__in_ids=IdArray(ids))
        for member_id, tier in claims_read.values_list("member_id", "tier"):
            claimed[member_id].add(tier)

        results: dict[int, ScoreResult] = {}
        changed: list[tuple] = []
        history: list[tuple] = []
        claims: list[tuple] = []
        changes: list[tuple] = []
        for member_id in ids:
            values, stored_or_none = computed[member_id]
            _, activity, award_points, total, tier, *_ = values
            if stored_or_none is None:  # inserted above with these values
                previous_total, previous_tier = 0, 1
            else:
                stored = stored_or_none
                previous_total, previous_tier = stored[3], stored[4]
                if values != stored:
                    changed.append(_score_row(member_id, values, now, postgresql=postgresql))
            if total != previous_total:
                history.append((member_id, now, activity, award_points, total, tier, rules.version))
            new_claims = tuple(
                o for o in tier_ordinals if o <= tier and o not in claimed[member_id]
            )
            claims.extend((member_id, o, now, total) for o in new_claims)
            if tier != previous_tier:
                changes.append((member_id, previous_tier, tier, cause, total, now))
            results[member_id] = ScoreResult(
                member_id=member_id,
                previous_total=previous_total,
                total_score=total,
                activity_score=activity,
                award_points=award_points,
                previous_tier=previous_tier,
                tier=tier,
                new_claims=new_claims,
            )

        if postgresql:
            # One UPDATE ... FROM unnest(...) of only the rows whose values changed: no
            # INSERT ... ON CONFLICT (which first tries, and fails, to insert every row)
            # and no rewrite of an unchanged row (a dead tuple and new index entries each).
            pg_update_arrays(UserScore, _SCORE_COLUMNS, changed, key="member_id")
            pg_insert_arrays(ScoreHistory, _HISTORY_COLUMNS, history)
            # The claims were read under the score-row lock, so nothing else inserts them
            # meanwhile; ignoring conflicts only guards rows written outside scores_refresh.
            pg_insert_arrays(
                TierBadgeClaim, _CLAIM_COLUMNS, claims, on_conflict="ON CONFLICT DO NOTHING"
            )
            pg_insert_arrays(TierChange, _CHANGE_COLUMNS, changes)
        else:
            upsert_rows(
                UserScore, _SCORE_COLUMNS, changed, unique="member", update=_SCORE_COLUMNS[1:]
            )
            insert_rows(ScoreHistory, _HISTORY_COLUMNS, history)
            insert_rows(TierBadgeClaim, _CLAIM_COLUMNS, claims, ignore_conflicts=True)
            insert_rows(TierChange, _CHANGE_COLUMNS, changes)
        outbox_tier_changes(changes=changes, usernames=usernames, changed_at=now)
    return results


def _snapshots_claim(*, batch_size: int) -> list[int]:
    """Claim up to ``batch_size`` pending snapshots (oldest first), mark them processed and
    return their member ids (one per snapshot).

    SKIP LOCKED: snapshots another worker has claimed are left to it, never waited on or
    scored twice; the claimed rows stay locked until the batch transaction ends, and a
    rollback leaves them pending. On PostgreSQL claim and mark are one ``UPDATE ... WHERE id
    IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``.
    """
    now = timezone.now()
    if not is_postgresql():
        claimed = list(
            MetricsSnapshot.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .order_by("id")
            .values_list("id", "member_id")[:batch_size]
        )
        if claimed:
            MetricsSnapshot.objects.filter(id__in_ids=IdArray(sid for sid, _ in claimed)).update(
                processed_at=now
            )
        return [member_id for _, member_id in claimed]
    table = connection.ops.quote_name(MetricsSnapshot._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET processed_at = %s
            WHERE id IN (
                SELECT id FROM {table} WHERE processed_at IS NULL
                ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED
            )
            RETURNING member_id
            """,  # noqa: S608 - identifiers from model metadata; values are parameters
            [now, batch_size],
        )
        return [row[0] for row in cursor.fetchall()]


def _score_batch_once(*, batch_size: int, as_of: date | None) -> tuple[int, int]:
    """Claim and score one batch of snapshots; returns (snapshots claimed, members scored)."""
    with transaction.atomic(durable=True):
        claimed = _snapshots_claim(batch_size=batch_size)
        if not claimed:
            return 0, 0
        # A snapshot only says "refresh this member": the refresh reads the live metrics,
        # which are at least as new as the newest snapshot of the member.
        members = set(claimed)
        scores_refresh(member_ids=members, cause=TierChange.Cause.ACTIVITY, as_of=as_of)
        return len(claimed), len(members)


def scores_process_batch(*, as_of: date | None = None) -> int:
    """Score every member with a pending snapshot; returns the number of members scored.

    Claims up to ``settings.SCORE_BATCH_SIZE`` pending snapshots at a time (``FOR UPDATE
    SKIP LOCKED``, oldest first), marks them processed and refreshes their members through
    ``scores_refresh`` (cause ``activity``), one durable transaction per batch; repeats
    until a batch comes back short (nothing more was pending when it was claimed).

    Guarantees: a crash leaves each batch either fully applied or still pending; two workers
    never claim the same snapshot; a run with nothing pending writes nothing at all (not
    even its ``PipelineRun`` row, which records the last run that did work).
    """
    batch_size = settings.SCORE_BATCH_SIZE
    started_at = timezone.now()
    scored = 0
    while True:
        claimed, members = _score_batch_once(batch_size=batch_size, as_of=as_of)
        scored += members
        if claimed < batch_size:
            break
    if scored:
        pipeline_run_record(kind=RunKind.SCORE_BATCH, started_at=started_at, count=scored)
    return scored
