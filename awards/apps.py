from django.apps import AppConfig


class AwardsConfig(AppConfig):
    name = "awards"

    def ready(self) -> None:
        # The scoring app knows awards only through its registries (it never imports this
        # app): the ``award`` event type (registered on import of ``awards.handlers``) and
        # the award-points invariant of ``check_ledger``.
        from awards import handlers  # noqa: F401
        from awards.admit import award_admit_register
        from awards.ledger import award_points_mismatches
        from scoring.registry import ledger_check_register

        ledger_check_register("awards", award_points_mismatches)
        # Budgets and four-eyes requests for award events at ingest (awards.admit).
        award_admit_register()
