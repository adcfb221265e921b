"""Template filters and tags for member pages."""

from fractions import Fraction
from functools import cache
from typing import Any
from urllib.parse import quote

from django import template
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import localtime

from awards.selectors import AwardRow
from members.charts import Heatmap, heatmap_rects
from members.leaderboard import BoardPage
from scoring.formula import exact_text

register = template.Library()

# What Django's reverse() leaves unquoted in a path argument (django.urls.resolvers).
_PATH_SAFE = "!$&'()*+,;=" + "/~:@"


@register.filter
def num(value: Any) -> str:
    """``{{ 1234567|num }}`` → ``"1,234,567"``: the site's one number filter, ``intcomma``
    for its only locale (en-us) without the per-call locale lookups ("" for None)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "" if value is None else str(value)


@register.filter
def signed(value: int | None) -> str:
    """A score change with its sign and thousands separators: "+1,200", "0", and for a
    loss a true minus sign (U+2212) rather than a hyphen."""
    if value is None:
        return ""
    number = int(value)
    if number > 0:
        return f"+{num(number)}"
    if number < 0:
        return f"\u2212{num(-number)}"
    return "0"


@register.simple_tag
def heatmap_cells(heatmap: Heatmap, day_format: str = "%Y-%m-%d") -> SafeString:
    """``{% heatmap_cells heatmap %}``: a heatmap's day squares, tooltips dated with
    ``day_format`` (see ``members.charts.heatmap_rects``); the profile and the staff member
    page both draw theirs with it."""
    return heatmap_rects(heatmap.cells, size=heatmap.cell, day_format=day_format)


@cache
def _profile_url_parts() -> tuple[str, str]:
    """The profile URL around its username: ("/u/", "/") unless the site is mounted elsewhere."""
    head, tail = reverse("members:profile", args=["0"]).rsplit("0", 1)
    return head, tail


@cache
def _tier_badge(ordinal: int, name: str) -> str:
    return f'<span class="tier-badge tier-{int(ordinal)}">{int(ordinal)} · {escape(name)}</span>'


@register.simple_tag
def board_rows(page: BoardPage, me: str | None = None) -> SafeString:
    """``{% board_rows page me %}``: the board's ``<tr>`` rows, the row of username ``me``
    marked ``id="me"``.

    Built in one pass in Python: a 50-row page as a template loop was ~4,000 template
    variable lookups, 50 ``{% url %}`` reversals and 100 locale-aware number formats, most
    of a deep page's time. The username (the only user-controlled value) is escaped, and
    quoted in the URL exactly as ``reverse()`` quotes it; the rest are integers and tier
    names from the settings (escaped too, once per tier).
    """
    head, tail = _profile_url_parts()
    window = page.window_start is not None
    rows = []
    for entry in page.entries:
        name = escape(entry.username)
        url = escape(head + quote(entry.username, safe=_PATH_SAFE) + tail)
        mark = ' id="me" class="me"' if me is not None and entry.username == me else ""
        if window:
            loss = " loss" if (entry.gain or 0) < 0 else ""
            numbers = (
                f'<td class="num{loss}">{signed(entry.gain)}</td>'
                f'<td class="num muted">{num(entry.total_score)}</td>'
            )
        else:
            numbers = f'<td class="num">{num(entry.total_score)}</td>'
        rows.append(
            f'<tr{mark}><td class="num">{int(entry.rank)}</td>'
            f'<td><a href="{url}">{name}</a></td>'
            f"<td>{_tier_badge(entry.tier.ordinal, entry.tier.name)}</td>{numbers}</tr>"
        )
    return mark_safe("\n".join(rows))  # noqa: S308 - every user-controlled value escaped above


def _award_row(award: AwardRow) -> str:
    revoked = award.revoked
    struck = ' class="revoked"' if revoked else ""
    granted = localtime(award.granted_at)
    category: str
    if award.category_label:
        category = escape(award.category_label)
    else:
        category = '<span class="muted">—</span>'
    if award.reason is not None:
        reason = escape(award.reason) + (
            "" if award.public else ' <span class="pill">private</span>'
        )
    else:
        reason = '<span class="muted">Private award</span>'
    if revoked:
        status = (
            f'<span class="pill pill-revoked">Revoked {localtime(award.revoked_at):%Y-%m-%d}</span>'
        )
        if award.revocation_reason:
            status += f' <span class="muted">{escape(award.revocation_reason)}</span>'
    else:
        status = "Counts"
    return (
        f'<tr class="award-row{" is-revoked" if revoked else ""}">'
        f'<td><time datetime="{granted.isoformat()}">{granted:%Y-%m-%d}</time></td>'
        f'<td class="num{" revoked" if revoked else ""}">+{num(award.points)}</td>'
        f"<td{struck}>{category}</td><td{struck}>{reason}</td><td>{status}</td></tr>"
    )


@register.simple_tag
def award_rows(rows: list[AwardRow]) -> SafeString:
    """``{% award_rows awards.rows %}``: a profile's award history rows, built in one pass
    (the template loop was about half of the profile's render). Reasons, category labels and
    revocation reasons are escaped; the rest are integers and dates."""
    return mark_safe("\n".join(_award_row(row) for row in rows))  # noqa: S308 - escaped above


@register.filter
def exact(value: Fraction | int) -> str:
    """An exact number for the score explanation: whole numbers grouped ("1,350"), else a
    decimal when exact ("1.08"), else a fraction ("13/12") — never a rounded float."""
    if value is None:
        return ""
    number = Fraction(value)
    if number.denominator == 1:
        return num(number.numerator)
    text = exact_text(number)
    if "." in text:
        whole, decimals = text.split(".")
        return f"{num(int(whole))}.{decimals}"
    return text
