"""Granter budgets: every staff member's use of their budget; superusers set overrides."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from awards.budgets import budget_override_set, budgets_overview
from staff.htmx import HtmxHttpRequest
from swampclub.http import staff_permission_required

TEMPLATE = "staff/budgets.html"


class BudgetOverrideForm(forms.Form):
    """A granter's own budget in points; empty goes back to the setting."""

    points = forms.IntegerField(required=False, min_value=0, max_value=10**9)


@require_GET
@staff_permission_required("awards.add_award")
def budgets_view(request: HtmxHttpRequest) -> HttpResponse:
    """Each staff member's budget: limit, used in the window, remaining."""
    return render(request, TEMPLATE, {"rows": budgets_overview(), "form": BudgetOverrideForm()})


@require_POST
@staff_permission_required()
def budget_override_view(request: HtmxHttpRequest, username: str) -> HttpResponse:
    """Set a granter's budget (``points``; empty clears it). Superusers only (403)."""
    if not request.user.is_superuser:
        raise PermissionDenied
    granter = get_object_or_404(get_user_model(), username=username, is_staff=True)
    form = BudgetOverrideForm(request.POST)
    if not form.is_valid():
        context = {"rows": budgets_overview(), "form": form, "error_for": granter.username}
        return render(request, TEMPLATE, context, status=422)
    budget_override_set(granter=granter, points=form.cleaned_data["points"], by=request.user)
    messages.success(request, f"Budget of {granter.username} updated.")
    return redirect("staff:budgets")
