"""The four moods: the single source of their names, numbers and aliases."""

from __future__ import annotations

import difflib

from .errors import MoodgenError

# mood = valence + 2 * arousal, with valence and arousal in {0, 1} (VGMIDI v1 labels).
MOODS: tuple[str, ...] = ("depressed", "calm", "angry", "happy")
ALIASES: dict[str, str] = {"sad": "depressed", "tense": "angry", "excited": "happy"}


def mood_from_valence_arousal(valence: int, arousal: int) -> int:
    return int(valence) + 2 * int(arousal)


def mood_index(mood: str | int) -> int:
    """Accept a mood name, an alias or a number 0-3; anything else is one clear error."""
    text = str(mood).strip().lower()
    if text.isdigit() and int(text) < len(MOODS):
        return int(text)
    name = ALIASES.get(text, text)
    if name in MOODS:
        return MOODS.index(name)
    valid = ", ".join(f"{i}={m}" for i, m in enumerate(MOODS))
    aliases = ", ".join(f"{a}={m}" for a, m in ALIASES.items())
    near = difflib.get_close_matches(text, [*MOODS, *ALIASES], 1, 0.6)
    guess = f"did you mean {near[0]}? " if near else ""
    raise MoodgenError(f"unknown mood {mood!r}: {guess}use one of {valid} (aliases: {aliases})")


def with_article(word: str) -> str:
    """'an angry', 'a calm': a mood as the sentences name it."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
