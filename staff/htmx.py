"""Helpers shared by the staff views."""

from django.http import HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers

# Every staff view requires a signed-in staff member (swampclub.http has the request types).
from swampclub.http import StaffHttpRequest as HtmxHttpRequest


def htmx_target(request: HtmxHttpRequest) -> str | None:
    """The id of the element an HTMX request will swap into, or None for a plain request."""
    return request.htmx.target if request.htmx else None


def render_page_or_fragment(
    request: HtmxHttpRequest,
    template: str,
    context: dict,
    *,
    fragments: set[str],
    status: int = 200,
) -> HttpResponse:
    """Render the fragment named by the request's HTMX target, else the whole page.

    The view, not the client, decides what comes back: only targets listed in
    ``fragments`` get a fragment (``template#target``); anything else gets the full page.
    The response varies on the htmx headers so no cache serves a fragment as a page.
    """
    target = htmx_target(request)
    name = f"{template}#{target}" if target in fragments else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ("HX-Request", "HX-Target"))
    return response
