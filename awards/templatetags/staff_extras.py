"""Template helpers for the staff pages."""

from django import template
from django.utils.safestring import SafeString, mark_safe

from awards.selectors_staff import COUNT_CAP, HEATMAP_CELL, Heatmap
from awards.selectors_staff import tier_name as _tier_name

register = template.Library()


@register.filter
def tier_name(ordinal: int) -> str:
    """``{{ score.tier|tier_name }}`` → "Murk Lurker"."""
    return _tier_name(int(ordinal))


@register.filter
def num(value) -> str:
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

    Built in Python rather than with a template loop: a year is 371 cells, and the loop
    (with a date filter per cell) was most of the member page's render time. Every value
    is a number, a fixed class name or a formatted date, so nothing needs escaping.
    """
    size = HEATMAP_CELL
    return mark_safe(  # noqa: S308 (numbers, fixed strings and dates only)
        "".join(
            f'<rect x="{cell.x}" y="{cell.y}" width="{size}" height="{size}" rx="2" '
            f'class="{"hm hm-on" if cell.active else "hm"}"><title>{cell.day:%a %Y-%m-%d}'
            f"{': active' if cell.active else ''}</title></rect>"
            for cell in heatmap.cells
        )
    )
