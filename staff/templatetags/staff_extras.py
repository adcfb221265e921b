"""Template helpers for the staff pages."""

from functools import cache
from urllib.parse import quote

from django import template
from django.urls import reverse
from django.utils.encoding import iri_to_uri
from django.utils.http import RFC3986_SUBDELIMS

from awards.private_text import (
    award_private_text_visible,
    award_reason_for,
    award_staff_note_for,
)
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


@register.filter
def private_text_visible(user) -> bool:
    """``{% with private=request.user|private_text_visible %}``: whether ``user`` may read
    private reasons and staff notes, asked once for a whole table instead of once per row
    (``reason_for`` / ``staff_note_for`` ask per award)."""
    return award_private_text_visible(user)


@cache
def _url_parts(name: str, sample: str) -> tuple[str, str]:
    """The URL named ``name`` around its one argument: ("/staff/members/", "/")."""
    head, tail = reverse(name, args=[sample]).rsplit(sample, 1)
    return head, tail


@register.filter
def member_staff_url(username: str) -> str:
    """``{{ username|member_staff_url }}``: ``{% url 'staff:member-detail' username %}``
    without a URL resolution per row (the same quoting as ``reverse``)."""
    head, tail = _url_parts("staff:member-detail", "0")
    return head + iri_to_uri(quote(str(username), safe=RFC3986_SUBDELIMS + "/~:@")) + tail


@register.filter
def award_revoke_url(award_id: int) -> str:
    """``{{ award.pk|award_revoke_url }}``: ``{% url 'staff:award-revoke' award.pk %}``
    without a URL resolution per row."""
    head, tail = _url_parts("staff:award-revoke", "0")
    return f"{head}{int(award_id)}{tail}"
