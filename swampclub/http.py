"""Shared view helpers: JSON errors and the HTMX-aware login redirect."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django_htmx.http import HttpResponseClientRedirect


def json_error(status: int, error: str, **extra: Any) -> JsonResponse:
    """Return ``{"error": error, ...extra}`` with the given status."""
    return JsonResponse({"error": error, **extra}, status=status)


class HtmxLoginRedirectMiddleware:
    """Turn a login redirect answering an HTMX request into a full-page redirect.

    Without this, an expired session during an HTMX request would swap the login page into
    a fragment of the current page; ``HX-Redirect`` makes the browser navigate instead.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            getattr(request, "htmx", False)
            and response.status_code == 302
            and response["Location"].startswith(str(settings.LOGIN_URL))
        ):
            return HttpResponseClientRedirect(response["Location"])
        return response
