"""Member pages: the sign-in that also serves the CLI's browser flow, and ``/settings/keys/``.

Browser flow (SPEC §10): the CLI opens ``/login?cli_callback=…&state=…&device_code=…``.
A visitor signs in there as on any login page and comes back to the same URL; a signed-in
member gets the confirmation page, which shows the device code and posts a plain,
CSRF-protected form to ``/login/cli/confirm``; that issues a sign-in token and redirects the
browser to ``<cli_callback>?token=…&state=…``. Anything but the CLI's loopback callback is
refused before a form is even shown.
"""

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.csp import CSP
from django.views.decorators.http import require_http_methods, require_POST

from accounts.cli_callback import CliLogin, CliLoginRefused, cli_login_parse
from accounts.forms import KeyCreateForm
from accounts.models import CliSignInToken
from accounts.selectors import member_keys_list
from accounts.services import cli_token_issue, member_key_create, member_key_revoke
from scoring.models import ApiKey
from swampclub.http import MemberRequest


def _refused(request: HttpRequest, reason: str) -> HttpResponse:
    response = render(request, "accounts/cli_refused.html", {"reason": reason}, status=400)
    add_never_cache_headers(response)
    return response


def _confirm_page(request: HttpRequest, cli: CliLogin) -> HttpResponse:
    response = render(request, "accounts/cli_confirm.html", {"cli": cli})
    # The confirmation form posts to this site, which answers with a redirect to the CLI's
    # loopback callback; browsers apply ``form-action`` to that redirect too, so this one
    # page also allows exactly that origin.
    csp = {**settings.SECURE_CSP, "form-action": [CSP.SELF, cli.origin]}
    response._csp_config = csp  # type: ignore[attr-defined]
    add_never_cache_headers(response)
    return response


class SignInView(LoginView):
    """``/login``: the site's sign-in, which also starts the CLI's browser flow."""

    cli: CliLogin | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            self.cli = cli_login_parse(request.GET)
        except CliLoginRefused as refused:
            return _refused(request, str(refused))
        if self.cli and request.user.is_authenticated and request.method == "GET":
            return _confirm_page(request, self.cli)
        return super().dispatch(request, *args, **kwargs)

    def get_success_url(self) -> str:
        """Back to the same ``/login?…`` (now the confirmation) for the CLI, else as usual."""
        if self.cli:
            return f"{reverse('accounts:login')}?{self.cli.query()}"
        return super().get_success_url()

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Adds ``cli`` (the browser-flow parameters, or None) for the page's wording."""
        return {**super().get_context_data(**kwargs), "cli": self.cli}


@require_POST
@login_required
def cli_confirm(request: MemberRequest) -> HttpResponse:
    """Connect the CLI: issue a sign-in token and send the browser to the CLI's callback.

    The parameters come back from the confirmation form and are validated again; anything
    but the CLI's loopback callback is refused (400) and no token is issued.
    """
    try:
        cli = cli_login_parse(request.POST)
    except CliLoginRefused as refused:
        return _refused(request, str(refused))
    if cli is None:
        return _refused(request, "The confirmation did not say where the CLI is waiting.")
    token = cli_token_issue(member=request.user, via=CliSignInToken.Via.BROWSER)
    response = HttpResponseRedirect(cli.redirect_url(token))
    add_never_cache_headers(response)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def keys(request: MemberRequest) -> HttpResponse:
    """A member's own API keys: list (GET) and create (POST; the secret is shown once).

    Keys made here and by ``swamp auth login`` carry the ``ingest`` scope. The creation
    answer is a page, never a redirect, and never cached: the secret is stored nowhere it
    could be shown again. An invalid name answers 422 with the error beside the field.
    """
    form = KeyCreateForm(request.POST or None)
    created: ApiKey | None = None
    plaintext = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                created, plaintext = member_key_create(
                    member=request.user, name=form.cleaned_data["name"]
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
        if created:
            form = KeyCreateForm()
        else:
            status = 422
    context = {
        "form": form,
        "created": created,
        "plaintext": plaintext,
        "keys": member_keys_list(member=request.user),
    }
    response = render(request, "accounts/keys.html", context, status=status)
    add_never_cache_headers(response)
    return response


@login_required
@require_POST
def key_revoke(request: MemberRequest, key_id: int) -> HttpResponse:
    """Revoke one of the member's own keys (idempotent); someone else's is a 404."""
    try:
        api_key = member_key_revoke(member=request.user, key_id=key_id)
    except ApiKey.DoesNotExist as missing:
        raise Http404("No such key of yours.") from missing
    label = api_key.name or api_key.prefix
    messages.success(request, f"Key “{label}” revoked: requests using it are refused from now on.")
    return redirect("accounts:keys")
