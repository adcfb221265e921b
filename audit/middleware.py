"""Request context for the audit trail, and a safety net for staff POSTs nothing recorded."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

from audit.context import RequestInfo, current
from audit.services import audit_record
from swampclub.http import ViewFunc

# Staff writes happen under these paths; any successful POST there that recorded no entry of
# its own gets a generic one ("staff.post"), so a new staff page cannot write unaudited.
AUDITED_PREFIXES = ("/staff/", "/admin/")
# Signing in and out of the admin is not a write to audit.
UNAUDITED_SUFFIXES = ("/login/", "/logout/")


def audit_exempt(view: ViewFunc) -> ViewFunc:
    """Mark a staff view whose POST writes nothing (a validation endpoint, say)."""
    view.audit_exempt = True  # type: ignore[attr-defined]
    return view


def client_ip(request: HttpRequest) -> str | None:
    """The peer address as the server sees it (``REMOTE_ADDR``).

    Behind a reverse proxy this is the proxy: the proxy must be configured to pass the
    client address on in ``REMOTE_ADDR`` (gunicorn ``--forwarded-allow-ips``).
    """
    return request.META.get("REMOTE_ADDR") or None


class AuditMiddleware:
    """Make the request's IP, user agent and path available to ``audit_record``.

    After a POST under ``/staff/`` or ``/admin/`` by a signed-in staff member that succeeded
    (status below 400) but recorded no audit entry, record ``staff.post`` with the path and
    the names (never the values) of the submitted fields.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        info = RequestInfo(
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", ""),
            path=request.path,
        )
        token = current.set(info)
        try:
            response = self.get_response(request)
            if self._needs_fallback(request, response, info):
                audit_record(
                    action="staff.post",
                    actor=request.user,
                    object_type="path",
                    object_repr=request.path,
                    after={"fields": sorted(k for k in request.POST if k != "csrfmiddlewaretoken")},
                )
            return response
        finally:
            current.reset(token)

    def process_view(
        self,
        request: HttpRequest,
        view_func: ViewFunc,
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> None:
        """Remember whether the view declared itself write-free."""
        info = current.get()
        if info is not None and getattr(view_func, "audit_exempt", False):
            info.exempt = True

    @staticmethod
    def _needs_fallback(request: HttpRequest, response: HttpResponse, info: RequestInfo) -> bool:
        if request.method != "POST" or info.recorded or info.exempt:
            return False
        if response.status_code >= 400:
            return False
        path = request.path
        if not path.startswith(AUDITED_PREFIXES) or path.endswith(UNAUDITED_SUFFIXES):
            return False
        user = getattr(request, "user", None)
        return bool(user is not None and user.is_authenticated and user.is_staff)
