"""The audit trail: one append-only row per staff write."""

from typing import Any

import pgtrigger
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


def _account_reference() -> "models.ForeignKey[Any, Any]":
    """A nullable reference to an account with no foreign-key constraint and no reverse
    accessor: the entry outlives the account and never blocks its removal."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )


class AuditEntry(models.Model):
    """Who did what to which object, when, from where, and the object before and after.

    Append-only: the database refuses UPDATE and DELETE on this table (a pgtrigger
    ``Protect`` trigger on PostgreSQL, plain ``RAISE(ABORT)`` triggers on SQLite, see
    ``audit.db``), so no code path — not even a bug or a raw SQL statement — rewrites history.
    The actor and member are kept by id *and* by username, without a foreign-key constraint:
    a renamed or removed account never changes or blocks the record.
    """

    at = models.DateTimeField(default=timezone.now)
    actor = _account_reference()
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=50)
    object_type = models.CharField(max_length=50, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # The member the write concerns (an award's recipient, a key's owner), for filtering.
    member = _account_reference()
    member_username = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    path = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    after = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["actor", "-id"], name="audit_entry_actor_idx"),
            models.Index(fields=["member", "-id"], name="audit_entry_member_idx"),
            models.Index(fields=["action", "-id"], name="audit_entry_action_idx"),
            models.Index(fields=["at"], name="audit_entry_at_idx"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="audit_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username or '-'} {self.action}"

    @property
    def object_label(self) -> str:
        """``type #id`` of the object, for lists and the CSV export."""
        if not self.object_type:
            return self.object_repr
        label = f"{self.object_type} #{self.object_id}" if self.object_id else self.object_type
        return f"{label} {self.object_repr}".strip()
