"""Scores: ``scores_refresh`` (the one function that writes scores) and the score batch.

Lock order, for the whole project (no cycles, so no deadlocks between these paths):

- an award grant/revocation updates ``MemberMetrics`` (row lock) and then calls
  ``scores_refresh``, which locks the member's ``UserScore`` row;
- the score batch locks ``UserScore`` rows (ordered by member id) and then *reads*
  ``MemberMetrics`` without locking them;
- the consumer locks ``MemberMetrics`` rows and never touches ``UserScore``.

What a refresh reads and computes (row layout, locked reads, the formula over a batch) is in
``scoring.score_rows``; the statements that differ by database are in ``swampclub.dialect``.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.constants import OnConflict
from django.utils import timezone

from scoring.columns import column, field_column
from scoring.models import MetricsSnapshot, ScoreHistory, TierBadgeClaim, TierChange, UserScore
from scoring.outbox import outbox_tier_changes
from scoring.pipeline import RunKind, pipeline_run_record
from scoring.score_rows import (
    ACTIVITY,
    AWARDS,
    CHANGE_COLUMNS,
    CLAIM_COLUMNS,
    HISTORY_COLUMNS,
    SCORE_COLUMNS,
    TIER,
    TOTAL,
    Rules,
    inputs_json,
    metrics_read,
    score_row,
    score_values,
    scores_lock,
)
from scoring.tiers import tiers_all
from swampclub.dialect import (
    IdArray,
    JsonText,
    ids_in,
    queue_claim,
    rows_insert,
    rows_insert_new,
    rows_update,
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


def utc_today() -> date:
    """Today's date in UTC (the formula's default ``as_of``)."""
    return datetime.now(UTC).date()


def _zero_rows_insert(member_ids: list[int], now: datetime) -> None:
    """Give each existing user of ``member_ids`` without a score row a row of zeros (the
    portable first-row path): one ``INSERT OR IGNORE ... SELECT`` from the user table, so
    unknown ids insert nothing and the users need no read of their own."""
    quote = connection.ops.quote_name
    user = get_user_model()._meta
    columns = ", ".join(quote(column(UserScore, c)) for c in SCORE_COLUMNS)
    pk = quote(field_column(user.pk))
    username = quote(field_column(user.get_field("username")))
    where, params = ids_in(pk, member_ids)
    insert = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{insert} {quote(UserScore._meta.db_table)} ({columns}) "  # noqa: S608 - metadata names
            f"SELECT {pk}, {username}, 0, 0, 0, 1, 0, 0, %s, 1, NULL, NULL "
            f"FROM {quote(user.db_table)} WHERE {where}",
            [connection.ops.adapt_datetimefield_value(now), *params],
        )


def _first_rows_insert(
    missing: list[int], now: datetime, as_of: date
) -> tuple[list[int], dict[int, tuple], Rules] | None:
    """Insert the first score rows of ``missing`` with their final values, computed from
    metrics read just before; returns (ids inserted, values per existing member, rules), or
    None where the database takes the portable path (nothing was read or written)."""
    computed: dict[int, tuple] = {}
    state: list[Rules] = []

    def rows() -> list[tuple]:
        users = dict(
            get_user_model()
            .objects.filter(pk__in_ids=IdArray(missing))
            .order_by("pk")
            .values_list("pk", "username")
        )
        # Read after the lock, like the metrics: a rescore activates its version before it
        # locks anyone, so a refresh holding a lock it waited for sees the new version.
        rules = Rules.in_force()
        state.append(rules)
        metrics = metrics_read(list(users))
        result = []
        for member_id, name in users.items():
            values = score_values(name, metrics.get(member_id), as_of=as_of, rules=rules)
            computed[member_id] = values
            breakdown = JsonText(inputs_json(metrics.get(member_id), values, rules))
            result.append(score_row(member_id, values, now, breakdown))
        return result

    created = rows_insert_new(UserScore, SCORE_COLUMNS, rows, key="member_id")
    if created is None:
        return None
    return created, computed, state[0]


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
    return _refresh(member_ids, cause=cause, as_of=as_of, results=True)


def _refresh(
    member_ids: Iterable[int], *, cause: str, as_of: date | None, results: bool
) -> dict[int, ScoreResult]:
    """``scores_refresh``; with ``results`` False (the score batch) no ``ScoreResult`` is
    built and an empty dict is returned."""
    wanted = sorted({int(member_id) for member_id in member_ids})
    if not wanted:
        return {}
    cause = str(cause)  # the plain value: a driver may encode an enum member by its name
    now = timezone.now()
    as_of = as_of or utc_today()
    ordinals = [t.ordinal for t in tiers_all()]  # lowest floor first
    # Tier → the ordinals up to it: what a member with no claims yet newly claims.
    up_to = {o: tuple(x for x in ordinals if x <= o) for o in ordinals}

    with transaction.atomic():
        # Lock the existing score rows (member id order, so concurrent refreshes of
        # overlapping members cannot deadlock); the join brings the current username along.
        current = scores_lock(wanted)
        missing = [i for i in wanted if i not in current]
        # member id → (computed values, stored values or None for a row this refresh
        # created, the metrics read)
        computed: dict[int, tuple] = {}
        rules: Rules | None = None
        if missing:
            first = _first_rows_insert(missing, now, as_of)
            if first is None:
                # A member's first refresh creates the row, then locks it like the others: a
                # row inserted meanwhile by a concurrent refresh is waited for and read after
                # that refresh commits, never overwritten from stale zeros.
                _zero_rows_insert(missing, now)
                current.update(scores_lock(missing))
            else:
                created, first_values, rules = first
                computed.update((i, (first_values[i], None, None)) for i in created)
                lost = [i for i in first_values if i not in computed]
                if lost:
                    # Created by a concurrent refresh meanwhile: lock and recompute below,
                    # with the rules read again (that refresh may have been a rescore's).
                    current.update(scores_lock(lost))
                    rules = None
        if rules is None:
            rules = Rules.in_force()
        # Read only after the lock: whatever committed before we got it is included.
        metrics = metrics_read(sorted(current))
        for member_id, (stored, username) in current.items():
            member_metrics = metrics.get(member_id)
            values = score_values(username, member_metrics, as_of=as_of, rules=rules)
            computed[member_id] = (values, stored, member_metrics)
        ids = sorted(computed)
        if not ids:
            return {}
        claimed: dict[int, set[int]] = defaultdict(set)
        claims_read = TierBadgeClaim.objects.filter(member_id__in_ids=IdArray(ids))
        for member_id, tier in claims_read.values_list("member_id", "tier"):
            claimed[member_id].add(tier)

        out: dict[int, ScoreResult] = {}
        changed: list[tuple] = []
        history: list[tuple] = []
        claims: list[tuple] = []
        changes: list[tuple] = []
        for member_id in ids:
            values, stored, member_metrics = computed[member_id]
            activity, award_points = values[ACTIVITY], values[AWARDS]
            total, tier = values[TOTAL], values[TIER]
            if stored is None:  # inserted above with these values
                previous_total, previous_tier = 0, 1
            else:
                previous_total, previous_tier = stored[TOTAL], stored[TIER]
                if values != stored:
                    breakdown = JsonText(inputs_json(member_metrics, values, rules))
                    changed.append(score_row(member_id, values, now, breakdown))
            if total != previous_total:
                history.append((member_id, now, activity, award_points, total, tier, rules.version))
            member_claims = claimed.get(member_id)
            new_claims = up_to.get(tier) or tuple(o for o in ordinals if o <= tier)
            if member_claims:
                new_claims = tuple(o for o in new_claims if o not in member_claims)
            claims.extend((member_id, o, now, total) for o in new_claims)
            if tier != previous_tier:
                changes.append((member_id, previous_tier, tier, cause, total, now))
            if results:
                out[member_id] = ScoreResult(
                    member_id=member_id,
                    previous_total=previous_total,
                    total_score=total,
                    activity_score=activity,
                    award_points=award_points,
                    previous_tier=previous_tier,
                    tier=tier,
                    new_claims=new_claims,
                )

        # Only the rows whose values changed, in one UPDATE ... FROM unnest(...) on
        # PostgreSQL: no insert attempt per row and no rewrite of an unchanged row (a dead
        # tuple and new index entries each).
        rows_update(UserScore, SCORE_COLUMNS, changed, key="member_id")
        rows_insert(ScoreHistory, HISTORY_COLUMNS, history)
        # The claims were read under the score-row lock, so nothing else inserts them
        # meanwhile; ignoring conflicts only guards rows written outside scores_refresh.
        rows_insert(TierBadgeClaim, CLAIM_COLUMNS, claims, ignore_conflicts=True)
        rows_insert(TierChange, CHANGE_COLUMNS, changes)
        usernames = {row[0]: computed[row[0]][0][0] for row in changes}
        outbox_tier_changes(changes=changes, usernames=usernames, changed_at=now)
    return out


def _snapshots_claim(*, batch_size: int) -> list[int]:
    """Claim up to ``batch_size`` pending snapshots (oldest first), mark them processed and
    return their member ids (one per snapshot; see ``swampclub.dialect.queue_claim``)."""
    rows = queue_claim(
        MetricsSnapshot,
        pending=Q(processed_at__isnull=True),
        pending_sql="processed_at IS NULL",
        mark={"processed_at": timezone.now()},
        fields=["id", "member_id"],
        batch_size=batch_size,
    )
    return [member_id for _, member_id in rows]


def _score_batch_once(*, batch_size: int, as_of: date | None) -> tuple[int, int]:
    """Claim and score one batch of snapshots; returns (snapshots claimed, members scored)."""
    with transaction.atomic(durable=True):
        claimed = _snapshots_claim(batch_size=batch_size)
        if not claimed:
            return 0, 0
        # A snapshot only says "refresh this member": the refresh reads the live metrics,
        # which are at least as new as the newest snapshot of the member.
        members = set(claimed)
        _refresh(members, cause=TierChange.Cause.ACTIVITY, as_of=as_of, results=False)
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
