"""API keys: a member's ingest keys and the staff award keys (SPEC §3)."""

from django.conf import settings
from django.db import models


class ApiKey(models.Model):
    """An API key for ``/ingest``: only a SHA-256 of the secret is stored."""

    SCOPE_INGEST = "ingest"
    SCOPE_AWARD = "award"
    SCOPES = (SCOPE_INGEST, SCOPE_AWARD)

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    # A list of scope names, e.g. ["ingest", "award"].
    scopes = models.JSONField(default=list)
    # "swamp_" + the first 8 hex characters of the key: public, used to find the row.
    prefix = models.CharField(max_length=20, unique=True)
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.owner_id})"

    def has_scope(self, scope: str) -> bool:
        """True when the key carries ``scope``."""
        return scope in self.scopes
