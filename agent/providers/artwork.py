"""Choosing which artwork candidates to use: language order, votes, resolution, minimum sizes, limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from agent.providers.base import ArtworkCandidate, normalise_language

# How many images of each type an item gets (extra fanart comes on top of `fanart`).
DEFAULT_LIMITS: Final[dict[str, int]] = {
    "poster": 1, "fanart": 1, "banner": 1, "clearlogo": 1, "clearart": 1,
    "discart": 1, "landscape": 1, "keyart": 1, "thumb": 1,
}
# Smallest acceptable (width, height); a candidate with unknown size is kept.
DEFAULT_MIN_SIZES: Final[dict[str, tuple[int, int]]] = {
    "poster": (300, 450),
    "fanart": (1280, 720),
    "clearlogo": (400, 155),
    "clearart": (500, 281),
    "banner": (500, 92),
    "landscape": (500, 281),
    "discart": (500, 500),
    "thumb": (300, 169),
}
# Types where text-free (language-neutral) images beat ones in the preferred language.
NEUTRAL_FIRST: Final = frozenset({"fanart", "keyart"})


def art_key(candidate: ArtworkCandidate) -> str:
    """Return the slot a candidate fills: its type, or "seasonNN-<type>" for season art."""
    if candidate.season is None:
        return candidate.type
    return f"season{candidate.season:02d}-{candidate.type}"


def _big_enough(candidate: ArtworkCandidate, min_sizes: Mapping[str, tuple[int, int]]) -> bool:
    """True unless both dimensions are known and one is below the type's minimum."""
    minimum = min_sizes.get(candidate.type)
    if not minimum or not candidate.width or not candidate.height:
        return True
    return candidate.width >= minimum[0] and candidate.height >= minimum[1]


def _language_rank(candidate: ArtworkCandidate, language: str | None, neutral_first: bool) -> int:
    """0 best: preferred language then neutral (or neutral then preferred), then any other language."""
    lang = normalise_language(candidate.language)
    if lang is not None and lang == language:
        return 1 if neutral_first else 0
    if lang is None:
        return 0 if neutral_first else 1
    return 2


def rank_artwork(
    candidates: Iterable[ArtworkCandidate], language: str | None = "en", neutral_first: bool = False
) -> list[ArtworkCandidate]:
    """Order candidates of one slot: language group, then votes, vote average and resolution."""
    lang = normalise_language(language)
    return sorted(
        candidates,
        key=lambda c: (
            _language_rank(c, lang, neutral_first),
            -c.votes,
            -c.vote_average,
            -((c.width or 0) * (c.height or 0)),
        ),
    )


def choose_artwork(
    candidates: Iterable[ArtworkCandidate],
    language: str | None = "en",
    limits: Mapping[str, int] | None = None,
    min_sizes: Mapping[str, tuple[int, int]] | None = None,
    extrafanart: int = 0,
    types: Iterable[str] | None = None,
    neutral_first: Iterable[str] = NEUTRAL_FIRST,
) -> dict[str, list[ArtworkCandidate]]:
    """Pick the best images per slot, best first.

    Keys are artwork types ("poster") or season slots ("season01-poster"); `limits` override
    DEFAULT_LIMITS per type (season slots use their type's limit); `fanart` gets
    `1 + extrafanart` images, the first being the main fanart; `types` restricts the types
    used (config `artwork.types`); duplicate URLs are dropped.
    """
    if extrafanart < 0:
        raise ValueError(f"extrafanart must be 0 or more, got {extrafanart}")
    wanted_limits = {**DEFAULT_LIMITS, **(limits or {})}
    wanted_limits["fanart"] = wanted_limits.get("fanart", 1) + extrafanart
    sizes = DEFAULT_MIN_SIZES if min_sizes is None else min_sizes
    allowed = set(types) if types is not None else None
    neutral = frozenset(neutral_first)

    slots: dict[str, list[ArtworkCandidate]] = {}
    seen: set[str] = set()
    for cand in candidates:
        if cand.url in seen or (allowed is not None and cand.type not in allowed):
            continue
        if not _big_enough(cand, sizes):
            continue
        seen.add(cand.url)
        slots.setdefault(art_key(cand), []).append(cand)

    chosen: dict[str, list[ArtworkCandidate]] = {}
    for slot, group in slots.items():
        art_type = group[0].type
        limit = wanted_limits.get(art_type, 1)
        if limit <= 0:
            continue
        chosen[slot] = rank_artwork(group, language, art_type in neutral)[:limit]
    return chosen
