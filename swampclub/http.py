"""Shared view helpers: JSON errors and the HTMX-aware login redirect."""

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class MemberRequest(HttpRequest):
    """A request behind ``login_required``: ``user`` is a signed-in member (for type checkers)."""

    user: "User"


class HtmxHttpRequest(HttpRequest):
    """A request that went through ``HtmxMiddleware`` (for type checkers)."""

    htmx: HtmxDetails


class StaffHttpRequest(HtmxHttpRequest):
    """A request behind ``staff_permission_required``: ``user`` is a signed-in staff member
    (for type checkers)."""

    user: "User"


ViewFunc = Callable[..., Any]


def json_error(status: int, error: str, **extra: Any) -> JsonResponse:
    """Return ``{"error": error, ...extra}`` with the given status."""
    return JsonResponse({"error": error, **extra}, status=status)


class HtmxLoginRedirectMiddleware:
    """Turn a login redirect answering an HTMX request into a full-page redirect.

    Without this, an expired session during an HTMX request would swap the login page into
    a fragment of the current page; ``HX-Redirect`` makes the browser navigate instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HtmxHttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            getattr(request, "htmx", False)
            and response.status_code == 302
            and response["Location"].startswith(str(settings.LOGIN_URL))
        ):
            # After logging in, come back to the page the user was on, not to the fragment
            # endpoint the HTMX request called (often POST-only, e.g. a validation view).
            page = request.htmx.current_url_abs_path
            location = redirect_to_login(page)["Location"] if page else response["Location"]
            return HttpResponseClientRedirect(location)
        return response


def staff_permission_required(*perms: str) -> Callable[[ViewFunc], ViewFunc]:
    """Require login (redirect), then ``is_staff`` and every permission in ``perms`` (403).

    Anonymous users are sent to the login page (a full-page redirect for HTMX requests, via
    ``HtmxLoginRedirectMiddleware``); a logged-in user without the rights gets 403.
    """

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not request.user.is_staff or not request.user.has_perms(perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
