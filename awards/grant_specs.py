"""What a grant is made of, and the checks every grant path shares.

``GrantSpec`` is one award to grant (the form, the bulk file, the ``award`` event and award
requests all build one); ``validate_specs`` applies the payload rules (``awards.rules``),
the recipient checks and the no-self-grant rule; ``same_payload`` decides when a repeated
idempotency key is the same award. The writes are in ``awards.services``.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, NotRequired, TypedDict

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from awards.models import Award, AwardRequest
from awards.rules import award_payload_errors
from scoring.scores import ScoreResult

if TYPE_CHECKING:
    from django.contrib.auth.models import User


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

    def stored_fields(self) -> dict[str, Any]:
        """The fields an ``Award`` or an ``AwardRequest`` stores as they are (the reason
        stripped); the granter, source and times are the caller's."""
        return {
            "recipient_id": self.recipient_id,
            "points": self.points,
            "reason": self.reason.strip(),
            "staff_note": self.staff_note,
            "category": self.category,
            "public": self.public,
            "idempotency_key": self.idempotency_key,
            "granted_by_text": self.granted_by_text,
        }


class StaffGrantFields(TypedDict):
    """The keyword fields of one staff grant (``award_grant_or_request``): a ``GrantSpec``
    without its recipient and without the history fields; defaults as ``GrantSpec``'s."""

    points: int
    reason: str
    idempotency_key: str
    category: NotRequired[str]
    public: NotRequired[bool]
    staff_note: NotRequired[str]


class GrantFields(StaffGrantFields):
    """The keyword fields of ``award_grant``: a staff grant's, plus the granter's name and the
    grant time that imported history carries."""

    granted_by_text: NotRequired[str]
    granted_at: NotRequired[datetime | None]


class BulkCheck(NamedTuple):
    """A read-only look at a bulk grant: what would be refused and what is already granted."""

    errors: dict[int, ValidationError]
    existing: dict[int, Award]


def spec_errors(spec: GrantSpec) -> dict[str, list[str]]:
    """The payload rule violations of ``spec``, by field name (see ``award_payload_errors``)."""
    return award_payload_errors(
        points=spec.points,
        reason=spec.reason,
        idempotency_key=spec.idempotency_key,
        category=spec.category,
        public=spec.public,
        staff_note=spec.staff_note,
        granted_by_text=spec.granted_by_text,
    )


def validate_specs(
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
        problems = spec_errors(spec)
        if spec.recipient_id not in active:
            problems.setdefault("username", []).append("No active member with this username.")
        elif granted_by is not None and spec.recipient_id == granted_by.pk:
            problems.setdefault("username", []).append("Nobody can grant an award to themselves.")
        if problems:
            errors[index] = ValidationError(problems)
    return errors


def same_payload(stored: Award | AwardRequest, spec: GrantSpec) -> bool:
    """True when ``spec`` repeats the stored award or request: same points and (stripped)
    reason."""
    # The payload that decides "same award" is points and reason (SPEC §4); category,
    # visibility, notes and granter are metadata of the first write and never change.
    return stored.points == spec.points and stored.reason == spec.reason.strip()


def conflict_message(stored: Award | AwardRequest, noun: str) -> str:
    """The message for a key already used for ``stored`` (an ``award`` or an ``award
    request``, as ``noun`` says) with other points or reason."""
    return (
        f"This idempotency key was already used for {noun} #{stored.pk} with different points "
        f"or reason ({stored.points} points: “{stored.reason}”)."
    )


def conflict_error(award: Award) -> AwardConflict:
    """The conflict of a key already used for ``award`` with other points or reason."""
    return AwardConflict(conflict_message(award, "award"), existing=award)
