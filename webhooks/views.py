"""Staff pages for webhook endpoints: list and create (secret shown once), pause/resume,
rotate the secret, send a test event, the delivery log and redelivery.

Viewing needs ``webhooks.view_webhookendpoint``; every change needs
``webhooks.change_webhookendpoint`` as well.
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit.services import audit_record
from staff.forms import add_service_error
from staff.htmx import HtmxHttpRequest, render_page_or_fragment
from swampclub.http import staff_permission_required
from webhooks.forms import EndpointForm
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.selectors import delivery_log_for_endpoint, endpoint_list
from webhooks.services import (
    delivery_redeliver,
    endpoint_create,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_set_active,
)

VIEW = "webhooks.view_webhookendpoint"
CHANGE = "webhooks.change_webhookendpoint"
LIST_TEMPLATE = "staff/webhooks.html"
DETAIL_TEMPLATE = "staff/webhook_detail.html"


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    # What staff change on an endpoint; never its secret.
    return {
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "format": endpoint.format,
        "active": endpoint.active,
    }


@require_http_methods(["GET", "POST"])
@staff_permission_required(VIEW)
def endpoints_view(request: HtmxHttpRequest) -> HttpResponse:
    """List endpoints (GET); create one (POST, needs the change permission).

    The new secret appears in the creation response only (never cached, not a redirect).
    Invalid input answers 422 with each error beside its field; nothing is stored.
    """
    if request.method == "GET":
        context = {"form": EndpointForm(), "endpoints": endpoint_list()}
        return render(request, LIST_TEMPLATE, context)
    if not request.user.has_perm(CHANGE):
        raise PermissionDenied
    form = EndpointForm(request.POST)
    created = secret = None
    if form.is_valid():
        try:
            with transaction.atomic():
                created, secret = endpoint_create(created_by=request.user, **form.cleaned_data)
                audit_record(
                    action="webhook.create",
                    actor=request.user,
                    obj=created,
                    after=_snapshot(created),
                )
        except ValidationError as error:
            add_service_error(form, error)
    if created:
        form = EndpointForm()
    context = {"form": form, "created": created, "secret": secret, "endpoints": endpoint_list()}
    response = render(request, LIST_TEMPLATE, context, status=200 if created else 422)
    add_never_cache_headers(response)
    return response


@require_GET
@staff_permission_required(VIEW)
def endpoint_detail_view(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    """An endpoint's settings, actions and delivery log (``#delivery-log`` polls itself)."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    context = {"endpoint": endpoint, "deliveries": delivery_log_for_endpoint(endpoint)}
    return render_page_or_fragment(request, DETAIL_TEMPLATE, context, fragments={"delivery-log"})


@require_POST
@staff_permission_required(VIEW, CHANGE)
def endpoint_active_view(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    """Pause (``active=0``) or resume (``active=1``) an endpoint."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    active = request.POST.get("active") == "1"
    before = _snapshot(endpoint)
    with transaction.atomic():
        endpoint_set_active(endpoint=endpoint, active=active)
        endpoint.refresh_from_db()
        audit_record(
            action="webhook.resume" if active else "webhook.pause",
            actor=request.user,
            obj=endpoint,
            before=before,
            after=_snapshot(endpoint),
        )
    messages.success(request, "Endpoint resumed." if active else "Endpoint paused.")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)


@require_POST
@staff_permission_required(VIEW, CHANGE)
def endpoint_rotate_view(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    """Rotate the signing secret and show the new one, once (never cached)."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    with transaction.atomic():
        endpoint, secret = endpoint_rotate_secret(endpoint=endpoint)
        audit_record(action="webhook.rotate", actor=request.user, obj=endpoint)
    context = {
        "endpoint": endpoint,
        "deliveries": delivery_log_for_endpoint(endpoint),
        "secret": secret,
    }
    response = render(request, DETAIL_TEMPLATE, context)
    add_never_cache_headers(response)
    return response


@require_POST
@staff_permission_required(VIEW, CHANGE)
def endpoint_test_view(request: HtmxHttpRequest, endpoint_id: int) -> HttpResponse:
    """Queue a signed ``webhook.test`` event; it shows in the delivery log."""
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id)
    with transaction.atomic():
        delivery = endpoint_send_test(endpoint=endpoint)
        audit_record(
            action="webhook.test",
            actor=request.user,
            obj=endpoint,
            after={"delivery": delivery.pk},
        )
    messages.success(request, "Test event queued; its delivery appears in the log below.")
    return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)


@require_POST
@staff_permission_required(VIEW, CHANGE)
def delivery_redeliver_view(request: HtmxHttpRequest, delivery_id: int) -> HttpResponse:
    """Send a failed or dead delivery again (same ``webhook-id``)."""
    delivery = get_object_or_404(WebhookDelivery, pk=delivery_id)
    try:
        with transaction.atomic():
            delivery_redeliver(delivery=delivery)
            audit_record(
                action="webhook.redeliver",
                actor=request.user,
                obj=delivery,
                after={"endpoint": delivery.endpoint_id, "message_id": delivery.message_id},
            )
        messages.success(request, f"Delivery {delivery.message_id} queued again.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("webhooks:endpoint", endpoint_id=delivery.endpoint_id)
