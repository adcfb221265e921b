"""The staff member page's lineage tables (``_member_lineage.html``), built in Python.

A member's lineage lists up to 50 events per command group plus 50 rejected events; as a
template loop (two date filters, a default and four lookups per row) it was the largest
part of a busy member's page. The values come from telemetry (versions, ids, errors), so
each is escaped exactly as the template's autoescape did.
"""

from collections.abc import Iterable

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import template_localtime

from staff.selectors.lineage import LineageEvent

register = template.Library()

_DASH = "—"


def _when(moment) -> str:
    return f"{template_localtime(moment):%Y-%m-%d %H:%M:%S}"


@register.simple_tag
def lineage_event_rows(events: Iterable[LineageEvent]) -> SafeString:
    """``{% lineage_event_rows group.events %}``: one ``<tr>`` per counted event."""
    return mark_safe(  # noqa: S308 - every value escaped
        "".join(
            f'<tr><td><time datetime="{escape(e.timestamp.isoformat())}">{_when(e.timestamp)}'
            f"</time></td><td>{_when(e.received_at)}</td>"
            f"<td>{escape(e.cli_version) if e.cli_version else _DASH}</td>"
            f"<td><code>{escape(e.insert_id)}</code></td></tr>\n"
            for e in events
        )
    )


@register.simple_tag
def rejected_event_rows(events: Iterable[LineageEvent]) -> SafeString:
    """``{% rejected_event_rows rejected_events %}``: one ``<tr>`` per rejected event, with
    the reason it was rejected."""
    return mark_safe(  # noqa: S308 - every value escaped
        "".join(
            f"<tr><td>{_when(e.received_at)}</td><td>{escape(e.event)}</td>"
            f"<td>{escape(e.cli_version) if e.cli_version else _DASH}</td>"
            f"<td><code>{escape(e.insert_id)}</code></td><td>{escape(e.error)}</td></tr>\n"
            for e in events
        )
    )
