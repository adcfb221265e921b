from django.apps import AppConfig


class AwardsConfig(AppConfig):
    name = "awards"

    def ready(self) -> None:
        # Registers the ``award`` event handler with the scoring consumer's registry.
        from awards import handlers  # noqa: F401
