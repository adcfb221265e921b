"""Template helpers for the staff pages."""

from django import template

from awards.private_text import award_reason_for, award_staff_note_for
from members.templatetags.members_tags import num
from scoring.tiers import tier_or_placeholder
from staff.selectors.dashboard import COUNT_CAP

register = template.Library()
# The site's one number filter ("12,345"), also offered by ``members_tags``.
register.filter("num", num)


@register.filter
def tier_name(ordinal: int) -> str:
    """``{{ score.tier|tier_name }}`` → "Murk Lurker" ("Tier N" for a tier no longer set)."""
    return tier_or_placeholder(int(ordinal)).name


@register.filter
def capped(value: int) -> str:
    """A count from a capped query: ``"10,000+"`` past ``COUNT_CAP``, else the number."""
    return f"{COUNT_CAP:,}+" if value > COUNT_CAP else num(value)


@register.filter
def reason_for(award, user) -> str | None:
    """``{{ award|reason_for:request.user }}``: the reason, or None when private and hidden."""
    return award_reason_for(award, user)


@register.filter
def staff_note_for(award, user) -> str:
    """``{{ award|staff_note_for:request.user }}``: the staff note, or "" when hidden."""
    return award_staff_note_for(award, user)
