from django.apps import AppConfig


class ScoringConfig(AppConfig):
    name = "scoring"

    def ready(self) -> None:
        # The consumer's own event type and the scoring ledger checks. Ingest validates
        # cli_invocation events with the checks it owns (scoring.ingest).
        from django.core.signals import setting_changed

        from scoring.formula_settings import scoring_constants_clear
        from scoring.ingest import cli_invocation_default_insert_id, cli_invocation_validate
        from scoring.ledger import score_mismatches
        from scoring.metrics import CLI_INVOCATION, metrics_fold_cli_invocations
        from scoring.models import ApiKey
        from scoring.registry import EventType, event_type_register, ledger_check_register
        from swampclub.dialect import lookups_register
        from swampclub.folders import local_folders_create

        local_folders_create()

        event_type_register(
            EventType(
                name=CLI_INVOCATION,
                scope=ApiKey.SCOPE_INGEST,
                handle=metrics_fold_cli_invocations,
                validate=cli_invocation_validate,
                default_insert_id=cli_invocation_default_insert_id,
            )
        )
        ledger_check_register("scores", score_mismatches)
        lookups_register()
        setting_changed.connect(scoring_constants_clear)
