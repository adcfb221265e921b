from django.apps import AppConfig


class StaffConfig(AppConfig):
    """The staff console (SPEC §8, §10): pages over the awards ledger, members and scoring."""

    name = "staff"
