"""Writing the audit trail: ``audit_record`` for one entry, ``audit_record_many`` for a batch.

Call them inside the transaction of the write they describe, so a write and its entry commit
together or not at all. The request's IP, user agent and path are added from
``audit.context`` when there is a request.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import models

from audit.context import request_info
from audit.models import AuditEntry

_REPR_MAX = 200
_UA_MAX = 300
_PATH_MAX = 300


@dataclass(frozen=True)
class AuditItem:
    """One entry for ``audit_record_many``."""

    action: str
    actor: Any = None
    obj: models.Model | None = None
    member: Any = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    object_type: str = ""
    object_id: str = ""
    object_repr: str = ""


def _entry(item: AuditItem) -> AuditEntry:
    info = request_info()
    object_type, object_id, object_repr = item.object_type, item.object_id, item.object_repr
    if item.obj is not None:
        object_type = object_type or item.obj._meta.model_name or ""
        object_id = object_id or str(item.obj.pk)
        object_repr = object_repr or str(item.obj)
    actor, member = item.actor, item.member
    return AuditEntry(
        actor_id=getattr(actor, "pk", None),
        actor_username=getattr(actor, "username", "") or "",
        action=item.action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr[:_REPR_MAX],
        member_id=getattr(member, "pk", None),
        member_username=getattr(member, "username", "") or "",
        ip=info.ip if info else None,
        user_agent=(info.user_agent if info else "")[:_UA_MAX],
        path=(info.path if info else "")[:_PATH_MAX],
        before=dict(item.before) if item.before is not None else None,
        after=dict(item.after) if item.after is not None else None,
    )


def audit_record(
    *,
    action: str,
    actor: Any,
    obj: models.Model | None = None,
    member: Any = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    object_type: str = "",
    object_id: str = "",
    object_repr: str = "",
) -> AuditEntry:
    """Append one audit entry: ``actor`` did ``action`` to ``obj`` (concerning ``member``).

    ``before``/``after`` are JSON-able snapshots of what changed. The entry can never be
    changed or deleted afterwards (database triggers).
    """
    entry = _entry(
        AuditItem(
            action=action,
            actor=actor,
            obj=obj,
            member=member,
            before=before,
            after=after,
            object_type=object_type,
            object_id=object_id,
            object_repr=object_repr,
        )
    )
    entry.save(force_insert=True)
    if (info := request_info()) is not None:
        info.recorded += 1
    return entry


def audit_record_many(items: Iterable[AuditItem]) -> int:
    """Append many entries with one INSERT; return how many."""
    entries = [_entry(item) for item in items]
    if entries:
        AuditEntry.objects.bulk_create(entries)
        if (info := request_info()) is not None:
            info.recorded += len(entries)
    return len(entries)
