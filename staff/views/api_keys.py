"""API keys: create one for a member (the secret is shown once), list, revoke."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from awards.audited import api_key_create_audited, api_key_revoke_audited
from scoring.apikeys import api_keys_list
from scoring.models import ApiKey
from staff.forms import ApiKeyCreateForm, add_service_error
from staff.htmx import HtmxHttpRequest, render_page_or_fragment
from swampclub.http import staff_permission_required

TEMPLATE = "staff/api_keys.html"
LIST_LIMIT = 200


def _keys() -> list[ApiKey]:
    return api_keys_list(limit=LIST_LIMIT)


@require_http_methods(["GET", "POST"])
@staff_permission_required("scoring.add_apikey")
def api_keys_view(request: HtmxHttpRequest) -> HttpResponse:
    """List keys (GET) and create one (POST): the plaintext key appears in this response only.

    The key service decides who may create which key (an ``award`` key only for oneself,
    or by a superuser); its refusals show beside the fields. The list marks keys whose
    owner no longer has the rights a scope needs as suspended, with the reason.
    The creation response is never cached and is not a redirect, because the secret is not
    stored anywhere it could be shown again. Invalid input answers 422 with the errors
    beside the fields. The ``#key-list`` panel reloads itself on ``api-key-created``.
    """
    if request.method == "GET":
        context = {"form": ApiKeyCreateForm(), "keys": _keys()}
        return render_page_or_fragment(request, TEMPLATE, context, fragments={"key-list"})
    form = ApiKeyCreateForm(request.POST)
    created = plaintext = None
    if form.is_valid():
        try:
            created, plaintext = api_key_create_audited(
                actor=request.user,
                owner=form.cleaned_data["username"],
                scopes=form.cleaned_data["scopes"],
                name=form.cleaned_data["name"],
            )
        except ValidationError as error:
            add_service_error(form, error)
    status = 200 if created else 422
    if created:
        form = ApiKeyCreateForm()
    context = {"form": form, "created": created, "plaintext": plaintext}
    if request.htmx:
        response = render(request, f"{TEMPLATE}#key-form", context, status=status)
        if created:
            trigger_client_event(response, "api-key-created", {"prefix": created.prefix})
    else:
        response = render(request, TEMPLATE, {**context, "keys": _keys()}, status=status)
    add_never_cache_headers(response)
    return response


@require_POST
@staff_permission_required("scoring.add_apikey")
def api_key_revoke_view(request: HtmxHttpRequest, key_id: int) -> HttpResponse:
    """Revoke a key from now on (idempotent): its row for HTMX, a redirect otherwise."""
    api_key = get_object_or_404(ApiKey.objects.select_related("owner"), pk=key_id)
    already = api_key.revoked_at is not None
    api_key_revoke_audited(actor=request.user, api_key=api_key)
    if not request.htmx:
        if not already:
            messages.success(request, f"Key {api_key.prefix}… of {api_key.owner.username} revoked.")
        return redirect("staff:api-keys")
    return render(request, f"{TEMPLATE}#key-row", {"key": api_key, "just_revoked": not already})
