"""The formula constants in force: the SPEC §6 defaults merged with ``settings.SCORING``."""

from functools import cache

from django.conf import settings

from scoring.formula import ScoringConstants, constants_from_mapping


@cache
def scoring_constants() -> ScoringConstants:
    """The constants in force (cached; cleared when a test overrides ``SCORING``).

    Raises ``ValueError`` naming the key for an unknown or unusable ``SCORING`` entry.
    """
    return constants_from_mapping(getattr(settings, "SCORING", {}) or {})


def scoring_constants_clear(*, setting: str, **kwargs: object) -> None:
    """``setting_changed`` receiver (connected in ``ScoringConfig.ready()``): forget the
    cached constants when ``SCORING`` changes."""
    if setting == "SCORING":
        scoring_constants.cache_clear()
