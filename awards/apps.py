from importlib import import_module

from django.apps import AppConfig


class AwardsConfig(AppConfig):
    """The award ledger: awards, revocations, requests, budgets and the ``award`` event."""

    name = "awards"

    def ready(self) -> None:
        # The scoring app knows awards only through its registries (it never imports this
        # app): the ``award`` event type with its ingest hooks (budgets and four-eyes
        # requests in ``awards.admit``), the award-points invariant of ``check_ledger`` and
        # the award event's schema in the API document.
        from awards.admit import award_events_admit
        from awards.event_payload import EVENT_NAME
        from awards.handlers import (
            award_event_insert_id,
            award_event_validate,
            award_events_conflict,
            award_events_conflict_keys,
            award_events_handle,
        )
        from awards.ledger import award_points_mismatches
        from awards.rules import award_properties_schema
        from scoring.models import ApiKey
        from scoring.openapi import openapi_extend
        from scoring.registry import EventType, event_type_register, ledger_check_register

        event_type_register(
            EventType(
                name=EVENT_NAME,
                scope=ApiKey.SCOPE_AWARD,
                validate=award_event_validate,
                conflict=award_events_conflict,
                conflict_keys=award_events_conflict_keys,
                default_insert_id=award_event_insert_id,
                admit=award_events_admit,
                handle=award_events_handle,
            )
        )
        ledger_check_register("awards", award_points_mismatches)
        openapi_extend(schema_builders={"AwardProperties": award_properties_schema})
        # The tasks join Celery's registry in every process (web included), so the services
        # queue them by name (``awards.wakeups``) without importing the tasks module.
        import_module("awards.tasks")
