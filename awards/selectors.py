"""Award reads: one award, and a member's award history as the public may see it."""

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import QuerySet

from awards.models import Award


@dataclass(frozen=True)
class AwardEntry:
    """One award in a member's history; ``reason`` is None when hidden. No staff note."""

    id: int
    points: int
    reason: str | None
    category: str
    public: bool
    granted_at: datetime
    revoked: bool
    revoked_at: datetime | None


def award_get(*, award_id: int) -> Award | None:
    """The award with this id (recipient and any revocation joined), or None."""
    return (
        Award.objects.select_related("recipient", "revocation", "granted_by")
        .filter(pk=award_id)
        .first()
    )


def _history(member: User) -> QuerySet[Award]:
    return (
        Award.objects.filter(recipient=member)
        .select_related("revocation")
        .only(
            "id",
            "points",
            "reason",
            "category",
            "public",
            "granted_at",
            "revocation__id",
            "revocation__revoked_at",
        )
        # Newest first; the id breaks ties between awards granted in the same instant.
        .order_by("-granted_at", "-id")
    )


def award_history_for_member(
    *, member: User, include_private_reasons: bool, limit: int | None = None
) -> list[AwardEntry]:
    """``member``'s awards, newest first, revoked ones included and flagged.

    A private award's reason is None unless ``include_private_reasons`` (the member
    themself, or staff); its category, a coarse label, is always given (SPEC §8 nulls only
    the reason). At most ``limit`` awards when given. One query.
    """
    awards = _history(member)
    if limit is not None:
        awards = awards[:limit]
    entries = []
    for award in awards:
        revocation = getattr(award, "revocation", None)
        entries.append(
            AwardEntry(
                id=award.pk,
                points=award.points,
                reason=award.reason if award.public or include_private_reasons else None,
                category=award.category,
                public=award.public,
                granted_at=award.granted_at,
                revoked=revocation is not None,
                revoked_at=revocation.revoked_at if revocation else None,
            )
        )
    return entries
