"""Award writes: grant, bulk grant and revoke — the only way points are given or taken back.

The staff form, the bulk upload and the ``award`` API event all come through here, so these
guarantees hold whichever path carries an award:

- **Exactly once.** An award is inserted *through* the UNIQUE (recipient, idempotency_key)
  constraint — ``INSERT ... ON CONFLICT DO NOTHING RETURNING id``
  (``swampclub.dialect.insert_returning_new``) — never after a separate
  "does it exist?" read, so concurrent grants of one key insert one row, and only the
  transaction whose insert returned the row adds its points.
- **Idempotent.** Repeating a grant with the same key and the same points and reason returns
  the stored award (``created=False``) and changes nothing. The same key with different
  points or reason is a conflict (``AwardConflict``); nothing is written.
- **Atomic.** The award row, the change to ``MemberMetrics.award_points`` (made by
  scoring's ``metrics_add_award_points``) and the refreshed score commit together or not
  at all.
- **Outside the activity formula.** Points go to ``award_points`` only: they never touch
  event counts, active dates, streaks, caps or multipliers.
- **Scored at once.** The recipient's score is refreshed in the same transaction through
  ``scoring.scores.scores_refresh`` (cause ``award`` or ``revocation``), the function the
  score batch uses, so the caller already knows the new total and any tier change.

Locks: the award's unique-index entry first — bulk inserts go in (recipient, key) order, so
two bulk grants over overlapping rows wait for each other instead of deadlocking — then the
project's lock order for ``MemberMetrics`` and ``UserScore``, documented in
``scoring.scores``.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Unpack

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from awards.events import award_events_granted, award_events_revoked
from awards.grant_specs import (
    AwardConflict,
    BulkCheck,
    BulkGrantError,
    GrantFields,
    GrantResult,
    GrantSpec,
    conflict_error,
    same_payload,
    spec_errors,
    validate_specs,
)
from awards.models import Award, AwardRevocation
from awards.rules import reason_errors
from scoring.award_points import metrics_add_award_points
from scoring.models import TierChange
from scoring.scores import ScoreResult, scores_refresh
from swampclub.dialect import insert_returning_new

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class RevokeResult(NamedTuple):
    """One revocation's outcome; ``created`` is False when the award was already revoked."""

    revocation: AwardRevocation
    created: bool
    score: ScoreResult | None


def _awards_stored(wanted: set[tuple[int, str]]) -> dict[tuple[int, str], Award]:
    """The stored awards of the ``(recipient id, idempotency key)`` pairs in ``wanted``, by
    pair (one query)."""
    return {
        (award.recipient_id, award.idempotency_key): award
        for award in Award.objects.filter(
            recipient_id__in={r for r, _ in wanted}, idempotency_key__in={k for _, k in wanted}
        )
        if (award.recipient_id, award.idempotency_key) in wanted
    }


def _grant_valid(
    rows: Sequence[tuple[int, GrantSpec]],
    *,
    granted_by: "User | None",
    source: str,
    now: datetime,
) -> tuple[dict[int, GrantResult], dict[int, AwardConflict]]:
    """Grant already-validated rows; return results and conflicts, both by row index.

    Only the first row of each (recipient, key) is offered to the insert; every row is then
    compared with the stored award of its key, so a repeat (in this call or from before)
    with the same payload resolves to that award and a different payload is a conflict.
    Conflicting rows were never inserted, so they need no undoing.
    """
    first_rows: dict[tuple[int, str], GrantSpec] = {}
    for _, spec in rows:
        first_rows.setdefault((spec.recipient_id, spec.idempotency_key), spec)
    candidates = [
        Award(
            **spec.stored_fields(),
            granted_by=granted_by,
            source=source,
            granted_at=spec.granted_at or now,
        )
        for _, spec in sorted(first_rows.items(), key=lambda item: item[0])
    ]
    inserted_ids = insert_returning_new(Award, candidates, unique=("recipient", "idempotency_key"))

    wanted = set(first_rows)
    stored = _awards_stored(wanted)

    results: dict[int, GrantResult] = {}
    conflicts: dict[int, AwardConflict] = {}
    counted: set[int] = set()
    deltas: dict[int, int] = defaultdict(int)
    for index, spec in rows:
        award = stored[(spec.recipient_id, spec.idempotency_key)]
        if not same_payload(award, spec):
            conflicts[index] = conflict_error(award)
            continue
        # A key repeated within this call is created (and counted) by its first row only.
        created = award.pk in inserted_ids and award.pk not in counted
        if created:
            counted.add(award.pk)
            deltas[award.recipient_id] += award.points
        results[index] = GrantResult(award=award, created=created, score=None)

    if deltas:
        metrics_add_award_points(deltas=deltas)
        scores = scores_refresh(member_ids=sorted(deltas), cause=TierChange.Cause.AWARD)
        granted = [r.award for r in results.values() if r.created and r.award is not None]
        award_events_granted(awards=granted, scores=scores)
        for index, result in results.items():
            if result.created and result.award is not None:
                results[index] = result._replace(score=scores.get(result.award.recipient_id))
    return results, conflicts


# --- services ---------------------------------------------------------------------------------


def award_grant(
    *, recipient: "User", granted_by: "User | None", source: str, **fields: Unpack[GrantFields]
) -> GrantResult:
    """Grant ``points`` to ``recipient`` for ``reason``, once per ``idempotency_key``.

    The first call with a key inserts the award, adds its points to the recipient's
    ``MemberMetrics.award_points`` and refreshes their score (cause ``award``); the result
    carries the ``ScoreResult`` (new total, tier, claims). A later call with the same key and
    the same points and reason returns the stored award with ``created=False`` and writes
    nothing, whatever its other fields say.

    Guarantees: atomic (one transaction; a savepoint when nested); exactly once under
    concurrency (the insert goes through the UNIQUE (recipient, idempotency_key) constraint;
    concurrent callers with one key get one award, one addition); its outbox event is
    written in the same transaction.

    Raises ``ValidationError`` keyed by field (``points``, ``reason``, ``category``,
    ``public``, ``idempotency_key``, ``staff_note``, ``granted_by_text``; ``username`` for
    an inactive recipient or a grant to oneself), and ``AwardConflict`` when the key is
    already used for this recipient with different points or reason.
    """
    spec = GrantSpec(recipient_id=recipient.pk, **fields)
    return award_grant_spec(spec, recipient=recipient, granted_by=granted_by, source=source)


@transaction.atomic
def award_grant_spec(
    spec: GrantSpec, *, recipient: "User", granted_by: "User | None", source: str
) -> GrantResult:
    """``award_grant`` for a grant already described by ``spec`` (whose ``recipient_id`` is
    ``recipient``'s): same guarantees, same errors."""
    if source not in Award.Source.values:
        raise ValueError(f"unknown award source {source!r}")
    errors = spec_errors(spec)
    if not recipient.is_active:
        errors.setdefault("username", []).append("No active member with this username.")
    elif granted_by is not None and recipient.pk == granted_by.pk:
        errors.setdefault("username", []).append("Nobody can grant an award to themselves.")
    if errors:
        raise ValidationError(errors)
    results, conflicts = _grant_valid(
        [(0, spec)], granted_by=granted_by, source=source, now=timezone.now()
    )
    if conflicts:
        raise conflicts[0]
    return results[0]


@transaction.atomic
def awards_grant_bulk(
    *,
    grants: Sequence[GrantSpec],
    granted_by: "User | None",
    source: str,
    skip_invalid: bool = False,
) -> list[GrantResult]:
    """Grant many awards at once with set-based SQL; one ``GrantResult`` per row, in order.

    Each row behaves as ``award_grant`` would: inserted once per (recipient, key), a repeat
    with the same points and reason resolves to the stored award (``created=False``), within
    this call as well as across calls. The work is a constant number of statements per
    chunk of rows (one validation query, chunked ``INSERT ... ON CONFLICT DO NOTHING
    RETURNING``, one fetch of the stored rows, a set-based metrics update) and a single
    ``scores_refresh`` of every recipient that gained points (cause ``award``).

    With ``skip_invalid=False`` (the default) it is all or nothing: any invalid or
    conflicting row raises ``BulkGrantError`` (``row_errors`` by index) and nothing is
    written. With ``skip_invalid=True`` refused rows come back with ``error`` set and the
    rest are granted — the consumer uses this so one bad event never blocks the others.

    Guarantees: atomic (one transaction; a savepoint when nested); exactly once under
    concurrency, as ``award_grant``; its outbox events are written in the same transaction.
    """
    if source not in Award.Source.values:
        raise ValueError(f"unknown award source {source!r}")
    if not grants:
        return []
    errors = validate_specs(grants, granted_by=granted_by)
    if errors and not skip_invalid:
        raise BulkGrantError(errors)
    valid = [(index, spec) for index, spec in enumerate(grants) if index not in errors]
    results, conflicts = _grant_valid(
        valid, granted_by=granted_by, source=source, now=timezone.now()
    )
    if conflicts and not skip_invalid:
        # Raising rolls back this call's inserts (the atomic block above).
        raise BulkGrantError(conflicts)
    refused: dict[int, ValidationError] = {**errors, **conflicts}
    out: list[GrantResult] = []
    for index in range(len(grants)):
        if index in results:
            out.append(results[index])
        else:
            existing = getattr(refused[index], "existing", None)
            out.append(GrantResult(award=existing, created=False, score=None, error=refused[index]))
    return out


def awards_bulk_check(*, grants: Sequence[GrantSpec], granted_by: "User | None") -> BulkCheck:
    """What ``awards_grant_bulk`` would refuse and which rows are already granted; no writes.

    For a dry run: ``errors`` holds each invalid or conflicting row (against stored awards
    and against an earlier row of ``grants`` with the same recipient and key) and
    ``existing`` each row whose award is already stored with the same payload (a re-run
    file grants nothing twice). Two queries, whatever the number of rows. Another
    transaction may grant in between; ``awards_grant_bulk`` re-checks through the
    constraint.
    """
    errors = validate_specs(grants, granted_by=granted_by)
    valid = [(index, spec) for index, spec in enumerate(grants) if index not in errors]
    wanted = {(spec.recipient_id, spec.idempotency_key) for _, spec in valid}
    stored = _awards_stored(wanted)
    existing: dict[int, Award] = {}
    first_in_file: dict[tuple[int, str], GrantSpec] = {}
    for index, spec in valid:
        pair = (spec.recipient_id, spec.idempotency_key)
        award = stored.get(pair)
        if award is not None:
            if same_payload(award, spec):
                existing[index] = award
            else:
                errors[index] = conflict_error(award)
            continue
        first = first_in_file.setdefault(pair, spec)
        if first is not spec and (
            first.points != spec.points or first.reason.strip() != spec.reason.strip()
        ):
            errors[index] = ValidationError(
                {
                    "idempotency_key": [
                        "An earlier row uses this key for the same member with different "
                        "points or reason."
                    ]
                }
            )
    return BulkCheck(errors=dict(sorted(errors.items())), existing=existing)


@transaction.atomic
def award_revoke(*, award: Award, revoked_by: "User | None", reason: str) -> RevokeResult:
    """Revoke ``award``: it stops counting; the award row itself never changes.

    The first call records the ``AwardRevocation``, subtracts the points from the
    recipient's ``MemberMetrics.award_points`` and refreshes their score (cause
    ``revocation``; tier badges already claimed stay). Any later call returns the stored
    revocation with ``created=False`` and writes nothing.

    Guarantees: atomic; at most one revocation per award even under concurrency (the
    insert goes through the revocation's UNIQUE award column, and only the inserting
    transaction subtracts); its outbox event is written in the same transaction. Raises
    ``ValidationError`` (``{"reason": [...]}``) for a reason outside 3..500 characters.
    """
    if problems := reason_errors(reason):
        raise ValidationError({"reason": problems})
    try:
        # The savepoint keeps the outer transaction usable after a duplicate insert fails.
        with transaction.atomic():
            revocation = AwardRevocation.objects.create(
                award=award,
                revoked_by=revoked_by,
                reason=reason.strip(),
                revoked_at=timezone.now(),
            )
    except IntegrityError:
        existing = AwardRevocation.objects.filter(award=award).first()
        if existing is None:  # some other integrity problem: not ours to hide
            raise
        return RevokeResult(revocation=existing, created=False, score=None)
    metrics_add_award_points(deltas={award.recipient_id: -award.points})
    scores = scores_refresh(member_ids=[award.recipient_id], cause=TierChange.Cause.REVOCATION)
    award_events_revoked(award=award, score=scores.get(award.recipient_id))
    return RevokeResult(revocation=revocation, created=True, score=scores.get(award.recipient_id))
