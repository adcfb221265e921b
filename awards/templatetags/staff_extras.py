"""Template helpers for the staff pages."""

from django import template

from awards.selectors_staff import tier_name as _tier_name

register = template.Library()


@register.filter
def tier_name(ordinal: int) -> str:
    """``{{ score.tier|tier_name }}`` → "Murk Lurker"."""
    return _tier_name(int(ordinal))
