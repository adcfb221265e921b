"""What a locked-out sign-in gets: django-axes decides, these answers say so.

django-axes counts failed ``authenticate()`` calls per account and per client IP
(settings ``AXES_*``). Its middleware hands a locked-out request to ``lockout_response``:
the CLI's JSON sign-in gets 429 JSON, every login page (site, ``/login``, admin) a page
that says what happened and when to try again; both carry ``Retry-After``.
"""

import math

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from swampclub.http import json_error

LOCKED_MESSAGE = "Too many failed sign-in attempts. Try again later."


def retry_after_seconds() -> int:
    """Seconds until a locked-out client may try again (the whole cool-off).

    Every attempt made while locked counts as another failure and restarts the cool-off,
    so the full period is the honest answer.
    """
    return math.ceil(settings.AXES_COOLOFF_TIME.total_seconds())


def sign_in_locked_out(request: HttpRequest) -> bool:
    """True when django-axes refused this request's sign-in attempt as locked out."""
    return bool(getattr(request, "axes_locked_out", False))


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """The 429 answer for a locked-out sign-in (``AXES_LOCKOUT_CALLABLE``)."""
    retry_after = retry_after_seconds()
    if request.path.startswith("/api/"):
        response: HttpResponse = json_error(
            429, "too_many_attempts", message=LOCKED_MESSAGE, retry_after=retry_after
        )
    else:
        response = render(
            request,
            "registration/locked_out.html",
            {"minutes": math.ceil(retry_after / 60), "message": LOCKED_MESSAGE},
            status=429,
        )
    response["Retry-After"] = str(retry_after)
    return response
