from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        # scoring never imports this app: it calls the listener registered here after every
        # commit that wrote outbox events, and the beat sweep covers a lost call.
        from scoring.outbox import outbox_listener_register
        from webhooks.tasks import outbox_committed

        outbox_listener_register(outbox_committed)
