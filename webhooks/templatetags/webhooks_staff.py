"""Template tags for webhook figures shown on other staff pages (the dashboard)."""

from django import template

from webhooks.selectors import deliveries_dead_count

register = template.Library()


@register.simple_tag
def webhook_dead_count() -> int:
    """The number of dead webhook deliveries (for the dashboard's health panel)."""
    return deliveries_dead_count()
