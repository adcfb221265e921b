"""Template tags for award governance: the signed-in granter's remaining budget."""

from django import template
from django.conf import settings
from django.template import Context

from awards.budgets import Budget, budget_get

register = template.Library()


@register.simple_tag(takes_context=True)
def grant_budget(context: Context) -> Budget | None:
    """The current user's grant budget (None without a signed-in user). Two queries."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return budget_get(granter=user)


@register.simple_tag
def approval_threshold() -> int:
    """Points above which a grant needs a second staff member's approval."""
    return settings.AWARD_APPROVAL_THRESHOLD
