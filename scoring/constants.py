"""The formula constants in force: the SPEC §6 defaults merged with ``settings.SCORING``."""

from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from scoring.formula import ScoringConstants, constants_from_mapping


@cache
def scoring_constants() -> ScoringConstants:
    """The constants in force (cached; cleared when a test overrides ``SCORING``).

    Raises ``ValueError`` naming the key for an unknown or unusable ``SCORING`` entry.
    """
    return constants_from_mapping(getattr(settings, "SCORING", {}) or {})


def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting == "SCORING":
        scoring_constants.cache_clear()


setting_changed.connect(_clear_cache)
