"""Tier lookup (SPEC §7), shared by every caller; the table comes from ``settings.TIERS``."""

from bisect import bisect_right
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed


@dataclass(frozen=True)
class Tier:
    """One tier: its ordinal (1 = lowest), name and score floor."""

    ordinal: int
    name: str
    floor: int


@cache
def tiers_all() -> tuple[Tier, ...]:
    """Every tier, lowest floor first."""
    tiers = sorted((Tier(o, n, f) for o, n, f in settings.TIERS), key=lambda t: t.floor)
    return tuple(tiers)


def tier_for_total(total: int) -> Tier:
    """The highest tier whose floor is at or below ``total`` (the lowest tier below 0)."""
    tiers = tiers_all()
    floors = [t.floor for t in tiers]
    index = bisect_right(floors, total) - 1
    return tiers[max(index, 0)]


def tier_get(ordinal: int) -> Tier:
    """The tier with this ordinal; ``KeyError`` if there is none."""
    for tier in tiers_all():
        if tier.ordinal == ordinal:
            return tier
    raise KeyError(ordinal)


def tier_or_placeholder(ordinal: int) -> Tier:
    """The tier with this ordinal, or a stand-in named "Tier N" (floor 0) for an ordinal no
    longer configured: scores computed before the tier table was shortened still show."""
    try:
        return tier_get(ordinal)
    except KeyError:
        return Tier(ordinal=ordinal, name=f"Tier {ordinal}", floor=0)


def tiers_between(old: int, new: int) -> list[Tier]:
    """Tiers with ordinal in (old, new], lowest first — the badges a rise from old to new earns."""
    return [t for t in tiers_all() if old < t.ordinal <= new]


def _clear_cache(*, setting: str, **kwargs: Any) -> None:
    if setting == "TIERS":
        tiers_all.cache_clear()


setting_changed.connect(_clear_cache)
