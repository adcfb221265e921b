"""Award writes: grant, bulk grant and revoke — the only way points are given or taken back.

The staff form, the bulk upload and the ``award`` API event all come through here, so these
guarantees hold whichever path carries an award:

- **Exactly once.** An award is inserted *through* the UNIQUE (recipient, idempotency_key)
  constraint — ``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` — never after a separate
  "does it exist?" read, so concurrent grants of one key insert one row, and only the
  transaction whose insert returned the row adds its points.
- **Idempotent.** Repeating a grant with the same key and the same points and reason returns
  the stored award (``created=False``) and changes nothing. The same key with different
  points or reason is a conflict (``AwardConflict``); nothing is written.
- **Atomic.** The award row, the change to ``MemberMetrics.award_points`` and the refreshed
  score commit together or not at all.
- **Outside the activity formula.** Points go to ``award_points`` only: they never touch
  event counts, active dates, streaks, caps or multipliers.
- **Scored at once.** The recipient's score is refreshed in the same transaction through
  ``scoring.scores.scores_refresh`` (cause ``award`` or ``revocation``), the function the
  score batch uses, so the caller already knows the new total and any tier change.

Lock order (see ``scoring.scores``): the award's unique-index entry, then the recipients'
``MemberMetrics`` rows (in member id order), then their ``UserScore`` rows (in member id
order, inside ``scores_refresh``). Bulk inserts go in (recipient, key) order, so two bulk
grants over overlapping rows wait for each other instead of deadlocking.
"""

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import batched
from typing import TYPE_CHECKING, Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from awards.events import award_events_granted, award_events_revoked
from awards.models import Award, AwardRevocation
from scoring.columns import column, field_column
from scoring.models import MemberMetrics, TierChange
from scoring.scores import ScoreResult, scores_refresh

if TYPE_CHECKING:
    from django.contrib.auth.models import User

REASON_MIN = 3
REASON_MAX = 500
KEY_MAX = 200
GRANTED_BY_TEXT_MAX = 200
STAFF_NOTE_MAX = 2000
# Rows per INSERT/UPDATE statement on SQLite: well under its 32,766 bind parameters.
# (PostgreSQL takes every row at once as one array per column.)
_ROWS_PER_STATEMENT = 500


class AwardConflict(ValidationError):
    """The idempotency key is already used for this recipient with other points or reason.

    ``existing`` is the stored award the key belongs to.
    """

    def __init__(self, message: str, *, existing: Award) -> None:
        super().__init__(message, code="award_conflict")
        self.existing = existing


class BulkGrantError(ValidationError):
    """Some rows of an all-or-nothing bulk grant were invalid or conflicting; nothing changed.

    ``row_errors`` maps the row's index in ``grants`` to its ``ValidationError``.
    """

    def __init__(self, row_errors: Mapping[int, ValidationError]) -> None:
        self.row_errors = dict(sorted(row_errors.items()))
        super().__init__(
            f"{len(self.row_errors)} row(s) cannot be granted; nothing was granted.",
            code="bulk_invalid",
        )


class GrantResult(NamedTuple):
    """One grant's outcome.

    ``award`` is the stored award (new or already there); ``created`` is True only for the
    call that inserted it; ``score`` is the recipient's refresh when something was created.
    In ``awards_grant_bulk(..., skip_invalid=True)`` a refused row has ``award=None`` (or the
    conflicting stored award) and its reason in ``error``.
    """

    award: Award | None
    created: bool
    score: ScoreResult | None
    error: ValidationError | None = None


class RevokeResult(NamedTuple):
    """One revocation's outcome; ``created`` is False when the award was already revoked."""

    revocation: AwardRevocation
    created: bool
    score: ScoreResult | None


@dataclass(frozen=True)
class GrantSpec:
    """One row of a bulk grant (the recipient by id; everything else as for ``award_grant``)."""

    recipient_id: int
    points: int
    reason: str
    idempotency_key: str
    category: str = Award.Category.OTHER
    public: bool = True
    staff_note: str = ""
    granted_by_text: str = ""
    granted_at: datetime | None = None


class BulkCheck(NamedTuple):
    """A read-only look at a bulk grant: what would be refused and what is already granted."""

    errors: dict[int, ValidationError]
    existing: dict[int, Award]


# --- validation -------------------------------------------------------------------------------


def _text_errors(
    value: Any, *, label: str, max_length: int, min_length: int = 0, strip: bool = False
) -> list[str]:
    """Problems with a text field; lengths count the stored form (stripped when ``strip``)."""
    if not isinstance(value, str):
        return [f"{label} must be text."]
    if "\x00" in value:
        return [f"{label} must not contain NUL characters."]
    stored = value.strip() if strip else value
    if min_length and not value.strip():
        return [f"{label} must not be blank."]
    if len(stored) < min_length:
        return [f"{label} must be at least {min_length} characters."]
    if len(stored) > max_length:
        return [f"{label} must be at most {max_length} characters."]
    return []


def award_payload_errors(
    *,
    points: Any,
    reason: Any,
    idempotency_key: Any,
    category: Any = Award.Category.OTHER,
    public: Any = True,
    staff_note: Any = "",
    granted_by_text: Any = "",
) -> dict[str, list[str]]:
    """The rule violations of an award's payload, by field name; empty when it is valid.

    Pure (no database): points a whole number (``bool`` is not one) in 1..``AWARD_MAX_POINTS``;
    reason 3..500 characters once stripped; category one of ``Award.Category``; public a
    bool; idempotency key 1..200 characters; staff note up to 2,000 and ``granted_by_text``
    up to 200 characters; no text may contain NUL (PostgreSQL cannot store it).
    """
    errors: dict[str, list[str]] = {}
    max_points = settings.AWARD_MAX_POINTS
    if isinstance(points, bool) or not isinstance(points, int):
        errors["points"] = ["Points must be a whole number."]
    elif not 1 <= points <= max_points:
        errors["points"] = [f"Points must be between 1 and {max_points:,}."]
    if problems := _text_errors(
        reason, label="Reason", min_length=REASON_MIN, max_length=REASON_MAX, strip=True
    ):
        errors["reason"] = problems
    if category not in Award.Category.values:
        errors["category"] = [f"Category must be one of {', '.join(Award.Category.values)}."]
    if not isinstance(public, bool):
        errors["public"] = ["Public must be true or false."]
    if problems := _text_errors(
        idempotency_key, label="Idempotency key", min_length=1, max_length=KEY_MAX
    ):
        errors["idempotency_key"] = problems
    if problems := _text_errors(staff_note, label="Staff note", max_length=STAFF_NOTE_MAX):
        errors["staff_note"] = problems
    if problems := _text_errors(
        granted_by_text, label="Granted by", max_length=GRANTED_BY_TEXT_MAX
    ):
        errors["granted_by_text"] = problems
    return errors


def _spec_errors(spec: GrantSpec) -> dict[str, list[str]]:
    return award_payload_errors(
        points=spec.points,
        reason=spec.reason,
        idempotency_key=spec.idempotency_key,
        category=spec.category,
        public=spec.public,
        staff_note=spec.staff_note,
        granted_by_text=spec.granted_by_text,
    )


def _validate_specs(
    grants: Sequence[GrantSpec], *, granted_by: "User | None"
) -> dict[int, ValidationError]:
    """Per-row errors for ``grants``: payload rules, recipient existence, no self-grant.

    One query, for which recipients exist and are active.
    """
    active = set(
        get_user_model()
        .objects.filter(pk__in={g.recipient_id for g in grants}, is_active=True)
        .values_list("pk", flat=True)
    )
    errors: dict[int, ValidationError] = {}
    for index, spec in enumerate(grants):
        problems = _spec_errors(spec)
        if spec.recipient_id not in active:
            problems.setdefault("username", []).append("No active member with this username.")
        elif granted_by is not None and spec.recipient_id == granted_by.pk:
            problems.setdefault("username", []).append("Nobody can grant an award to themselves.")
        if problems:
            errors[index] = ValidationError(problems)
    return errors


def _same_payload(award: Award, spec: GrantSpec) -> bool:
    # The payload that decides "same award" is points and reason (SPEC §4); category,
    # visibility, notes and granter are metadata of the first write and never change.
    return award.points == spec.points and award.reason == spec.reason.strip()


def _conflict(award: Award) -> AwardConflict:
    return AwardConflict(
        f"This idempotency key was already used for award #{award.pk} with different points "
        f"or reason ({award.points} points: “{award.reason}”).",
        existing=award,
    )


# --- set-based writes ----------------------------------------------------------------------


def _rows_sources(
    rows: Sequence[Sequence[Any]], db_types: Sequence[str]
) -> Iterator[tuple[str, list[Any]]]:
    """``rows`` as SQL row sources (``SELECT`` or ``VALUES``), each with its parameters.

    PostgreSQL: one ``SELECT * FROM unnest(%s::type[], ...)`` with one array parameter per
    column however many rows there are, so the statement is parsed and planned once and the
    driver quotes a few arrays instead of thousands of scalars. SQLite: ``VALUES`` lists of
    at most ``_ROWS_PER_STATEMENT`` rows (its bind-parameter limit).
    """
    if connection.vendor == "postgresql":
        casts = ", ".join(f"%s::{db_type}[]" for db_type in db_types)
        # The types come from the model's fields; every value is a parameter.
        source = f"SELECT * FROM unnest({casts})"  # noqa: S608
        yield source, [list(column) for column in zip(*rows, strict=True)]
        return
    row_sql = "(" + ", ".join(["%s"] * len(db_types)) + ")"
    for chunk in batched(rows, _ROWS_PER_STATEMENT):
        yield "VALUES " + ", ".join([row_sql] * len(chunk)), [v for row in chunk for v in row]


def _array_type(field: Any) -> str:
    # The column type without its length (varchar, not varchar(500)): the arrays only carry
    # values into the INSERT, which checks the lengths against the real column.
    return field.db_type(connection).split("(")[0]


def _awards_insert(awards: Sequence[Award]) -> set[int]:
    """Insert ``awards``, skipping any whose (recipient, key) exists; return the new ids.

    ``INSERT ... ON CONFLICT (recipient_id, idempotency_key) DO NOTHING RETURNING id`` (both
    PostgreSQL and SQLite ≥ 3.35): the constraint, not a prior read, decides who inserts.
    On PostgreSQL a concurrent insert of the same key waits for the other transaction and
    then does nothing (if it committed) or inserts (if it rolled back). Django's
    ``bulk_create(ignore_conflicts=True)`` cannot report which rows were inserted.
    """
    if not awards:
        return set()
    meta = Award._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    columns = ", ".join(qn(field_column(f)) for f in fields)
    target = ", ".join(qn(column(Award, name)) for name in ("recipient", "idempotency_key"))
    rows = [
        [f.get_db_prep_save(f.pre_save(award, add=True), connection=connection) for f in fields]
        for award in awards
    ]
    inserted: set[int] = set()
    for source, params in _rows_sources(rows, [_array_type(f) for f in fields]):
        # ``WHERE true`` keeps SQLite from reading ON CONFLICT as a join constraint.
        sql = (
            # Identifiers come from the model and are quoted; every value is a parameter.
            f"INSERT INTO {qn(meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT * FROM ({source}) AS row_source WHERE true "
            f"ON CONFLICT ({target}) DO NOTHING RETURNING {qn(field_column(meta.pk))}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            inserted.update(row[0] for row in cursor.fetchall())
    return inserted


def _metrics_add_award_points(deltas: Mapping[int, int]) -> None:
    """Add each delta to its member's ``MemberMetrics.award_points`` (creating missing rows).

    Set-based: one insert of missing rows, one ``SELECT ... FOR UPDATE`` in member order
    (so overlapping bulk grants lock in the same order), one ``UPDATE ... FROM`` the deltas.
    The addition is done by the database under the row lock, so concurrent grants to one
    member never lose an update.
    """
    changes = sorted((member_id, delta) for member_id, delta in deltas.items() if delta)
    if not changes:
        return
    member_ids = [member_id for member_id, _ in changes]
    # A member's first award may come before their first event: the row must exist.
    MemberMetrics.objects.bulk_create(
        [MemberMetrics(member_id=member_id) for member_id in member_ids], ignore_conflicts=True
    )
    list(
        MemberMetrics.objects.select_for_update()
        .filter(member_id__in=member_ids)
        .order_by("member_id")
        .values_list("member_id", flat=True)
    )
    meta = MemberMetrics._meta
    qn = connection.ops.quote_name
    table = qn(meta.db_table)
    member_col = qn(column(MemberMetrics, "member"))
    points_col = qn(column(MemberMetrics, "award_points"))
    updated_col = qn(column(MemberMetrics, "updated_at"))
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    for source, params in _rows_sources(changes, ["bigint", "bigint"]):
        # A CTE names the source's columns the same way on PostgreSQL and SQLite (≥ 3.33).
        sql = (
            # Identifiers come from the model and are quoted; every value is a parameter.
            f"WITH delta (member_id, points) AS ({source}) "  # noqa: S608
            f"UPDATE {table} SET {points_col} = {table}.{points_col} + delta.points, "
            f"{updated_col} = %s FROM delta WHERE {table}.{member_col} = delta.member_id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, now])


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
            recipient_id=spec.recipient_id,
            points=spec.points,
            reason=spec.reason.strip(),
            staff_note=spec.staff_note,
            category=spec.category,
            public=spec.public,
            idempotency_key=spec.idempotency_key,
            granted_by=granted_by,
            granted_by_text=spec.granted_by_text,
            source=source,
            granted_at=spec.granted_at or now,
        )
        for _, spec in sorted(first_rows.items(), key=lambda item: item[0])
    ]
    inserted_ids = _awards_insert(candidates)

    wanted = set(first_rows)
    stored = {
        (award.recipient_id, award.idempotency_key): award
        for award in Award.objects.filter(
            recipient_id__in={r for r, _ in wanted}, idempotency_key__in={k for _, k in wanted}
        )
        if (award.recipient_id, award.idempotency_key) in wanted
    }

    results: dict[int, GrantResult] = {}
    conflicts: dict[int, AwardConflict] = {}
    counted: set[int] = set()
    deltas: dict[int, int] = defaultdict(int)
    for index, spec in rows:
        award = stored[(spec.recipient_id, spec.idempotency_key)]
        if not _same_payload(award, spec):
            conflicts[index] = _conflict(award)
            continue
        # A key repeated within this call is created (and counted) by its first row only.
        created = award.pk in inserted_ids and award.pk not in counted
        if created:
            counted.add(award.pk)
            deltas[award.recipient_id] += award.points
        results[index] = GrantResult(award=award, created=created, score=None)

    if deltas:
        _metrics_add_award_points(deltas)
        scores = scores_refresh(member_ids=sorted(deltas), cause=TierChange.Cause.AWARD)
        granted = [r.award for r in results.values() if r.created and r.award is not None]
        award_events_granted(awards=granted, scores=scores)
        for index, result in results.items():
            if result.created and result.award is not None:
                results[index] = result._replace(score=scores.get(result.award.recipient_id))
    return results, conflicts


# --- services ---------------------------------------------------------------------------------


@transaction.atomic
def award_grant(
    *,
    recipient: "User",
    points: int,
    reason: str,
    idempotency_key: str,
    granted_by: "User | None",
    source: str,
    category: str = Award.Category.OTHER,
    public: bool = True,
    staff_note: str = "",
    granted_by_text: str = "",
    granted_at: datetime | None = None,
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
    if source not in Award.Source.values:
        raise ValueError(f"unknown award source {source!r}")
    spec = GrantSpec(
        recipient_id=recipient.pk,
        points=points,
        reason=reason,
        idempotency_key=idempotency_key,
        category=category,
        public=public,
        staff_note=staff_note,
        granted_by_text=granted_by_text,
        granted_at=granted_at,
    )
    errors = _spec_errors(spec)
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
    errors = _validate_specs(grants, granted_by=granted_by)
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
    errors = _validate_specs(grants, granted_by=granted_by)
    valid = [(index, spec) for index, spec in enumerate(grants) if index not in errors]
    wanted = {(spec.recipient_id, spec.idempotency_key) for _, spec in valid}
    stored = {
        (award.recipient_id, award.idempotency_key): award
        for award in Award.objects.filter(
            recipient_id__in={r for r, _ in wanted}, idempotency_key__in={k for _, k in wanted}
        )
        if (award.recipient_id, award.idempotency_key) in wanted
    }
    existing: dict[int, Award] = {}
    first_in_file: dict[tuple[int, str], GrantSpec] = {}
    for index, spec in valid:
        pair = (spec.recipient_id, spec.idempotency_key)
        award = stored.get(pair)
        if award is not None:
            if _same_payload(award, spec):
                existing[index] = award
            else:
                errors[index] = _conflict(award)
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
    if problems := _text_errors(
        reason, label="Reason", min_length=REASON_MIN, max_length=REASON_MAX, strip=True
    ):
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
    _metrics_add_award_points({award.recipient_id: -award.points})
    scores = scores_refresh(member_ids=[award.recipient_id], cause=TierChange.Cause.REVOCATION)
    award_events_revoked(award=award, score=scores.get(award.recipient_id))
    return RevokeResult(revocation=revocation, created=True, score=scores.get(award.recipient_id))
