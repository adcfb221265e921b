"""What the current request tells the audit trail: client IP, user agent, path.

Set by ``audit.middleware.AuditMiddleware`` for the length of one request (a context
variable, so threads and async tasks never see each other's). Outside a request — a Celery
task, a management command — there is none and entries carry no IP or user agent.
"""

from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestInfo:
    """The request being served, and how many audit entries it has recorded so far."""

    ip: str | None
    user_agent: str
    path: str
    recorded: int = 0
    exempt: bool = field(default=False)


current: ContextVar[RequestInfo | None] = ContextVar("audit_request", default=None)


def request_info() -> RequestInfo | None:
    """The current request's info, or None outside a request."""
    return current.get()
