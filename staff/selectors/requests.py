"""Reads for award requests: the staff list, the dashboard's pending panel, my requests."""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.utils import timezone

from awards.models import AwardRequest
from awards.recipients import GrantPreview, grant_preview_from_total, totals_for_members

LIST_LIMIT = 200


@dataclass(frozen=True)
class RequestRow:
    """A request with its state as of now and the preview of approving it."""

    request: AwardRequest
    state: str
    preview: GrantPreview


def _rows(requests: list[AwardRequest]) -> list[RequestRow]:
    now = timezone.now()
    totals = totals_for_members(member_ids={r.recipient_id for r in requests})
    rows = []
    for request in requests:
        preview = grant_preview_from_total(
            username=request.recipient.username,
            current_total=totals[request.recipient_id],
            points=request.points,
        )
        rows.append(
            RequestRow(request=request, state=request.effective_state(now), preview=preview)
        )
    return rows


def _base() -> QuerySet[AwardRequest]:
    return AwardRequest.objects.select_related("recipient", "requested_by", "decided_by")


def award_requests_list(
    *, state: str | None = None, requested_by: User | None = None, limit: int = LIST_LIMIT
) -> list[RequestRow]:
    """Requests newest first (at most ``limit``), optionally of one state or one requester.

    ``state`` is the state as seen now: ``pending`` excludes overdue requests, ``expired``
    includes them. Three queries.
    """
    now = timezone.now()
    requests = _base().order_by("-created_at", "-pk")
    if requested_by is not None:
        requests = requests.filter(requested_by=requested_by)
    if state == AwardRequest.State.PENDING:
        requests = requests.filter(state=state, expires_at__gt=now)
    elif state == AwardRequest.State.EXPIRED:
        requests = requests.filter(
            Q(state=state) | Q(state=AwardRequest.State.PENDING, expires_at__lte=now)
        )
    elif state:
        requests = requests.filter(state=state)
    return _rows(list(requests[:limit]))


def award_requests_pending(*, limit: int = 10) -> list[RequestRow]:
    """The oldest pending requests first (they expire first), with their previews."""
    requests = _base().filter(state=AwardRequest.State.PENDING, expires_at__gt=timezone.now())
    return _rows(list(requests.order_by("expires_at", "pk")[:limit]))


def award_request_row(*, request_id: int) -> RequestRow | None:
    """One request with its state and preview, or None (two queries)."""
    request = _base().filter(pk=request_id).first()
    return _rows([request])[0] if request is not None else None
