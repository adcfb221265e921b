"""Template helpers for the staff pages."""

from typing import Any

from django import template
from django.contrib.auth.models import AnonymousUser, User
from django.utils.safestring import SafeString

from awards.models import Award
from awards.selectors_staff import (
    COUNT_CAP,
    HEATMAP_CELL,
    Heatmap,
    award_reason_for,
    award_staff_note_for,
)
from awards.selectors_staff import tier_name as _tier_name
from members.charts import heatmap_rects

register = template.Library()


@register.filter
def tier_name(ordinal: int) -> str:
    """``{{ score.tier|tier_name }}`` → "Murk Lurker"."""
    return _tier_name(int(ordinal))


@register.filter
def num(value: Any) -> str:
    """``12345`` → ``"12,345"`` (what ``intcomma`` does for integers, without its locale work)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "" if value is None else str(value)


@register.filter
def capped(value: int) -> str:
    """A count from a capped query: ``"10,000+"`` past ``COUNT_CAP``, else the number."""
    return f"{COUNT_CAP:,}+" if value > COUNT_CAP else f"{value:,}"


@register.simple_tag
def heatmap_cells(heatmap: Heatmap) -> SafeString:
    """The heatmap's day squares as SVG ``<rect>``s, each with a ``<title>`` tooltip.

    One implementation with the profile's heatmap (``members.charts.heatmap_rects``, built in
    one pass rather than with a 371-cell template loop); here the tooltips name the weekday.
    """
    return heatmap_rects(heatmap.cells, size=HEATMAP_CELL, day_format="%a %Y-%m-%d")


@register.filter
def reason_for(award: Award, user: User | AnonymousUser) -> str | None:
    """``{{ award|reason_for:request.user }}``: the reason, or None when private and hidden."""
    return award_reason_for(award, user)


@register.filter
def staff_note_for(award: Award, user: User | AnonymousUser) -> str:
    """``{{ award|staff_note_for:request.user }}``: the staff note, or "" when hidden."""
    return award_staff_note_for(award, user)
