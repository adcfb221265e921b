"""Versions of the scoring rules: which version is in force, and its constants.

Every ``ScoringRules`` row is one version of the formula's constants (version 1 = SPEC §6).
The version in force is the one activated last; ``scores_refresh`` reads it after locking
the score rows, so a refresh never mixes versions with a rescore running beside it.

``settings.SCORING`` keeps working as before: any key there overrides that constant of the
version in force (and of a version being dry-run). Such an override is an operator's
switch, not a version: the scores written under it record the effective constants in their
breakdown, so their explanation stays exact after the setting changes (docs/scoring.md).
"""

from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from scoring.formula import (
    DEFAULT_CONSTANTS,
    ScoringConstants,
    constants_as_mapping,
    constants_from_mapping,
)
from scoring.models import ScoringRules

# The version in force when no ScoringRules row is active (a database flushed by a test).
DEFAULT_VERSION = 1


@dataclass(frozen=True)
class RulesInForce:
    """A rules version with the constants it scores with (``settings.SCORING`` applied).

    ``overrides`` is the effective constants as ``SCORING``-style text when the setting
    changes anything, else None; the score writer stores it with each score.
    """

    version: int
    constants: ScoringConstants
    overrides: dict | None


def _settings_overrides() -> dict:
    return dict(getattr(settings, "SCORING", {}) or {})


def rules_constants(rules: ScoringRules | None) -> ScoringConstants:
    """The constants of ``rules`` as stored (the SPEC §6 defaults for None), exactly."""
    if rules is None:
        return DEFAULT_CONSTANTS
    return constants_from_mapping(
        {
            "BASE_POINTS": rules.base_points,
            "GROUP_CAP": rules.group_cap,
            "GROUP_CAPS": rules.group_caps or {},
            "DIVERSITY_BONUS": rules.diversity_bonus,
            "STREAK_STEP": rules.streak_step,
            "STREAK_MAX": rules.streak_max,
            "ROLLING_BONUS": rules.rolling_bonus,
            "ROLLING_DAYS": rules.rolling_days,
        }
    )


def _with_overrides(version: int, rules: ScoringRules | None) -> RulesInForce:
    base = rules_constants(rules)
    overrides = _settings_overrides()
    if not overrides:
        return RulesInForce(version, base, None)
    constants = constants_from_mapping(overrides, base=base)
    effective = constants_as_mapping(constants) if constants != base else None
    return RulesInForce(version, constants, effective)


def rules_in_force() -> RulesInForce:
    """The version activated last, with ``settings.SCORING`` applied (one query)."""
    rules = (
        ScoringRules.objects.filter(activated_at__isnull=False)
        .order_by("-activated_at", "-version")
        .first()
    )
    return _with_overrides(rules.version if rules else DEFAULT_VERSION, rules)


def rules_for_version(version: int) -> RulesInForce:
    """Version ``version`` with ``settings.SCORING`` applied; ``ScoringRules.DoesNotExist``
    when there is no such version (version 1 always exists, as SPEC §6)."""
    rules = ScoringRules.objects.filter(version=version).first()
    if rules is None and version != DEFAULT_VERSION:
        raise ScoringRules.DoesNotExist(f"no scoring rules version {version}")
    return _with_overrides(version, rules)


def rules_constants_for_score(*, version: int, overrides: dict | None) -> ScoringConstants:
    """The constants a stored score was computed with: its stored ``overrides`` when it has
    them, else its version's constants."""
    if overrides:
        return constants_from_mapping(overrides)
    rules = ScoringRules.objects.filter(version=version).first()
    return rules_constants(rules)


def rules_get(*, version: int) -> ScoringRules:
    """The ``ScoringRules`` row of ``version``; version 1 (the model's defaults are SPEC
    §6) is recreated if a database was emptied. Raises ``ScoringRules.DoesNotExist``."""
    if version == DEFAULT_VERSION:
        return ScoringRules.objects.get_or_create(version=version, defaults={"note": "SPEC §6"})[0]
    rules = ScoringRules.objects.filter(version=version).first()
    if rules is None:
        raise ScoringRules.DoesNotExist(f"no scoring rules version {version}")
    return rules


def rules_activate(*, version: int) -> ScoringRules:
    """Put ``version`` in force from now on (the next refresh of any member uses it).

    Idempotent for the version already in force. Raises ``ScoringRules.DoesNotExist``.
    """
    rules = rules_get(version=version)
    if rules_in_force().version != version or rules.activated_at is None:
        rules.activated_at = timezone.now()
        rules.save(update_fields=["activated_at"])
    return rules
