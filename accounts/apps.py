from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in for members and their CLI: throttled login, CLI tokens, self-service keys."""

    name = "accounts"
