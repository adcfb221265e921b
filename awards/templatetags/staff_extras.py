"""Template helpers for the staff pages."""

from django import template
from django.utils.html import format_html_join

from awards.selectors_staff import HEATMAP_CELL, Heatmap
from awards.selectors_staff import tier_name as _tier_name

register = template.Library()


@register.filter
def tier_name(ordinal: int) -> str:
    """``{{ score.tier|tier_name }}`` → "Murk Lurker"."""
    return _tier_name(int(ordinal))


@register.simple_tag
def heatmap_cells(heatmap: Heatmap):
    """The heatmap's day squares as SVG ``<rect>``s, each with a ``<title>`` tooltip.

    Built in Python rather than with a template loop: a year is 371 cells, and the loop
    (with a date filter per cell) was most of the member page's render time.
    """
    return format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" rx="2" class="{}"><title>{}</title></rect>',
        (
            (
                cell.x,
                cell.y,
                HEATMAP_CELL,
                HEATMAP_CELL,
                "hm hm-on" if cell.active else "hm",
                f"{cell.day:%a %Y-%m-%d}" + (": active" if cell.active else ""),
            )
            for cell in heatmap.cells
        ),
    )
