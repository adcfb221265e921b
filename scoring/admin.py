"""Django admin for API keys and telemetry: read-mostly views for operators.

Keys are created with ``manage.py create_api_key`` or the staff API-key page (the only
places that can show the secret once); here they can be inspected and revoked. Telemetry
events are an append-only record, so the admin never adds, edits or deletes them.
"""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from scoring.apikeys import api_key_revoke
from scoring.models import ApiKey, EventStatus, ScoringRules, TelemetryEvent


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "owner", "name", "scopes", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    list_select_related = ["owner"]
    search_fields = ["prefix", "name", "owner__username"]
    readonly_fields = [
        "owner",
        "prefix",
        "key_hash",
        "scopes",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    fields = ["name", *readonly_fields]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # The admin could not show the secret exactly once; use create_api_key instead.
        return False

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        """Revoke every selected key that is still active."""
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


class EventStatusFilter(admin.SimpleListFilter):
    """Pending (queued), processed or rejected: the status is derived, not a column."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(status.value, status.label) for status in EventStatus]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in EventStatus.values:
            return getattr(queryset, str(self.value()))()
        return queryset


@admin.register(TelemetryEvent)
class TelemetryEventAdmin(admin.ModelAdmin):
    list_display = ["insert_id", "event", "member", "status", "timestamp", "received_at"]
    # Only choice filters: a filter over ``event`` would scan the whole table for values.
    list_filter = [EventStatusFilter]
    list_select_related = ["member"]
    search_fields = ["insert_id", "distinct_id", "member__username"]
    # The table grows without bound: skip the unfiltered COUNT(*) on every page.
    show_full_result_count = False
    readonly_fields = [field.name for field in TelemetryEvent._meta.fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TelemetryEvent]:
        return super().get_queryset(request).with_status()  # type: ignore[attr-defined]

    @admin.display(description="status")
    def status(self, obj: TelemetryEvent) -> str:
        """The annotated status (queue membership and ``error``)."""
        return str(getattr(obj, "status", ""))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ScoringRules)
class ScoringRulesAdmin(admin.ModelAdmin):
    """New rules versions are added here; a saved version never changes (scores record the
    version they used, so editing one would make their explanations wrong). A version is
    put in force only by a rescore (``manage.py rescore`` or the staff page)."""

    list_display = [
        "version",
        "base_points",
        "group_cap",
        "diversity_bonus",
        "streak_step",
        "streak_max",
        "rolling_bonus",
        "rolling_days",
        "note",
        "activated_at",
    ]
    readonly_fields = ["created_at", "activated_at"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
