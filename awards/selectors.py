"""Award reads: one award, and a member's award history as a given viewer may see it.

``award_history_for_member`` is the one reader of a member's history: the profile page
(``members.selectors.award_page_for_member`` pages it), the awards JSON and staff pages all
take their rows from it, and who may see a private award's details is decided here, once
(``award_details_visible``).
"""

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from awards.models import Award

# Private award reasons and staff notes show to staff only with this permission (SPEC §10).
PRIVATE_TEXT_PERMISSION = "awards.view_award"


def award_private_text_visible(viewer: Any) -> bool:
    """True when ``viewer`` is staff holding ``awards.view_award``: they may read private
    award details and staff notes."""
    return bool(
        viewer is not None
        and viewer.is_authenticated
        and viewer.is_staff
        and viewer.has_perm(PRIVATE_TEXT_PERMISSION)
    )


def _is_recipient(viewer: Any, recipient_id: int) -> bool:
    return bool(viewer is not None and viewer.is_authenticated and viewer.pk == recipient_id)


def award_details_visible(*, public: bool, recipient_id: int, viewer: Any) -> bool:
    """Whether ``viewer`` may see an award's reason and category (and a revocation's reason).

    A public award's details are everyone's; a private award's are its recipient's and
    staff's who hold ``awards.view_award`` — hidden from everyone else.
    """
    return public or _is_recipient(viewer, recipient_id) or award_private_text_visible(viewer)


@dataclass(frozen=True)
class AwardRow:
    """One award of a member's history as a viewer may see it.

    ``reason``, ``category`` and ``category_label`` are None when hidden from the viewer;
    ``revocation_reason`` is None unless the award is revoked and the viewer is its
    recipient or may read private text. The staff fields (``staff_note``, granter, source,
    revoker) are filled only when the caller opts in with ``staff_fields=True``; the staff
    note also needs ``awards.view_award``.
    """

    id: int
    points: int
    reason: str | None
    category: str | None
    category_label: str | None
    public: bool
    granted_at: datetime
    revoked: bool
    revoked_at: datetime | None
    revocation_reason: str | None
    staff_note: str | None = None
    granted_by_username: str | None = None
    granted_by_text: str | None = None
    source: str | None = None
    revoked_by_username: str | None = None


def award_get(*, award_id: int) -> Award | None:
    """The award with this id (recipient and any revocation joined), or None."""
    return (
        Award.objects.select_related("recipient", "revocation", "granted_by")
        .filter(pk=award_id)
        .first()
    )


_MEMBER_FIELDS = (
    "id",
    "recipient_id",
    "points",
    "reason",
    "category",
    "public",
    "granted_at",
    "revocation__id",
    "revocation__revoked_at",
    "revocation__reason",
)
_STAFF_FIELDS = (
    "staff_note",
    "source",
    "granted_by_text",
    "granted_by__username",
    "revocation__revoked_by__username",
)


def _history(member: Any, *, staff_fields: bool) -> QuerySet[Award]:
    awards = Award.objects.filter(recipient=member)
    if staff_fields:
        awards = awards.select_related("revocation__revoked_by", "granted_by").only(
            *_MEMBER_FIELDS, *_STAFF_FIELDS
        )
    else:
        # Only the columns a member may see: the staff note is never loaded.
        awards = awards.select_related("revocation").only(*_MEMBER_FIELDS)
    # Newest first; the id breaks ties between awards granted in the same instant.
    return awards.order_by("-granted_at", "-id")


def _row(
    award: Award, *, viewer: Any, staff_fields: bool, private_text: bool, category_given: bool
) -> AwardRow:
    revocation = getattr(award, "revocation", None)
    visible = award.public or private_text or _is_recipient(viewer, award.recipient_id)
    row = AwardRow(
        id=award.pk,
        points=award.points,
        reason=award.reason if visible else None,
        category=award.category if visible or category_given else None,
        category_label=award.get_category_display() if visible else None,
        public=award.public,
        granted_at=award.granted_at,
        revoked=revocation is not None,
        revoked_at=revocation.revoked_at if revocation else None,
        revocation_reason=(
            revocation.reason
            if revocation and (private_text or _is_recipient(viewer, award.recipient_id))
            else None
        ),
    )
    if not staff_fields:
        return row
    granter = award.granted_by
    revoker = revocation.revoked_by if revocation else None
    return replace(
        row,
        staff_note=award.staff_note if private_text else None,
        granted_by_username=granter.get_username() if granter else None,
        granted_by_text=award.granted_by_text,
        source=award.source,
        revoked_by_username=revoker.get_username() if revoker else None,
    )


def award_history_for_member(
    *,
    member: Any,
    viewer: Any,
    offset: int = 0,
    limit: int | None = None,
    staff_fields: bool = False,
    category_given: bool = False,
) -> list[AwardRow]:
    """``member``'s awards as ``viewer`` may see them, newest first; revoked ones included
    and flagged. One query.

    ``offset``/``limit`` take a slice (``limit=None``: to the end). Private details follow
    ``award_details_visible``; ``staff_fields=True`` adds granter, source, revoker and (for
    holders of ``awards.view_award``) the staff note — for staff pages only.
    ``category_given=True`` gives a private award's category code (not its label) whoever
    looks: the awards JSON's contract (SPEC §8 nulls only the reason).
    """
    history = _history(member, staff_fields=staff_fields)
    awards = list(history[offset:] if limit is None else history[offset : offset + limit])
    # Asked only when it matters: the permission check may cost a query.
    private_text = (
        staff_fields or any(not award.public or hasattr(award, "revocation") for award in awards)
    ) and award_private_text_visible(viewer)
    return [
        _row(
            award,
            viewer=viewer,
            staff_fields=staff_fields,
            private_text=private_text,
            category_given=category_given,
        )
        for award in awards
    ]
