"""Site-wide views that belong to no app."""

from django.http import HttpRequest, HttpResponseRedirect
from django.templatetags.static import static
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_GET


@require_GET
def favicon(request: HttpRequest) -> HttpResponseRedirect:
    """``/favicon.ico``: a redirect to the SVG icon, for clients that ask the site root.

    Pages link the icon themselves (``base.html``); this only answers the request browsers
    make on their own, which would otherwise be a 404 logged on every page. Temporary and
    cached for a day, because in production the target's name carries a content hash.
    """
    response = HttpResponseRedirect(static("favicon.svg"))
    patch_cache_control(response, public=True, max_age=86_400)
    return response
