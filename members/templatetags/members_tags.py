"""Template filters for member pages."""

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.safestring import SafeString

from members.charts import Heatmap, heatmap_rects

register = template.Library()


@register.filter
def signed(value: int | None) -> str:
    """A score change with its sign and thousands separators: "+1,200", "0", and for a
    loss a true minus sign (U+2212) rather than a hyphen."""
    if value is None:
        return ""
    number = int(value)
    if number > 0:
        return f"+{intcomma(number)}"
    if number < 0:
        return f"\u2212{intcomma(-number)}"
    return "0"


@register.simple_tag
def heatmap_cells(heatmap: Heatmap) -> SafeString:
    """``{% heatmap_cells heatmap %}``: the profile heatmap's day squares (see
    ``members.charts.heatmap_rects``)."""
    return heatmap_rects(heatmap.cells, size=heatmap.cell)
