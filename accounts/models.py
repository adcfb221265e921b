"""The one table of the accounts app: CLI sign-in tokens."""

from django.conf import settings
from django.db import models


class CliSignInToken(models.Model):
    """A short-lived token the swamp CLI trades, once, for its own API key.

    Issued by the CLI's JSON sign-in or by the browser flow's confirmation; only the SHA-256
    of the token is stored. It is valid for ``CLI_SIGN_IN_TOKEN_TTL`` and only at
    ``/api/auth/api-key/create``: it is never an API key and never a site session.
    """

    class Via(models.TextChoices):
        PASSWORD = "password"  # noqa: S105 (how the token was obtained, not a secret)
        BROWSER = "browser"

    member = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="cli_sign_in_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True)
    via = models.CharField(max_length=10, choices=Via.choices)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"CLI sign-in of {self.member_id} at {self.created_at:%Y-%m-%d %H:%M}"
