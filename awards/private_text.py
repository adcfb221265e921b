"""Who may read an award's private text on staff pages (SPEC §10): private reasons and staff
notes show only to holders of ``awards.view_award``; any staff member may see the rest."""

from typing import TYPE_CHECKING

from django.contrib.auth.models import AnonymousUser

from awards.models import Award

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser

PRIVATE_TEXT_PERMISSION = "awards.view_award"


def award_private_text_visible(user: "AbstractUser | AnonymousUser") -> bool:
    """True when ``user`` may read private award reasons and staff notes on staff pages."""
    return bool(user.is_authenticated and user.is_staff and user.has_perm(PRIVATE_TEXT_PERMISSION))


def award_reason_for(award: Award, user: "AbstractUser | AnonymousUser") -> str | None:
    """The award's reason as ``user`` may see it on a staff page: None when it is private
    and ``user`` lacks ``awards.view_award``."""
    if award.public or award_private_text_visible(user):
        return award.reason
    return None


def award_staff_note_for(award: Award, user: "AbstractUser | AnonymousUser") -> str:
    """The award's staff note as ``user`` may see it on a staff page ("" when hidden)."""
    return award.staff_note if award_private_text_visible(user) else ""
