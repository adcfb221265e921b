from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Sign-in for members and their CLI: throttled login, CLI tokens, self-service keys."""

    name = "accounts"

    def ready(self) -> None:
        # The CLI's sign-in routes join the API document served by scoring.
        from accounts.openapi import PATHS, SCHEMAS
        from scoring.openapi import openapi_extend

        openapi_extend(paths=PATHS, schemas=SCHEMAS)
