"""Durations as users write them: ``"30m"``, ``"1h30m"``, ``"90s"``, ``"1.5h"``; a bare number is minutes."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(h|m|s)", re.IGNORECASE)
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str | float | int) -> float:
    """Return ``text`` in seconds (> 0); raise ValueError with what is accepted when it cannot be read."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        seconds = float(text) * 60.0
    else:
        raw = str(text).strip()
        compact = raw.replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", compact):
            seconds = float(compact) * 60.0
        elif compact and _PART.sub("", compact) == "":
            seconds = sum(float(n) * _UNIT[u.lower()] for n, u in _PART.findall(compact))
        else:
            raise ValueError(f"{raw!r} is not a duration: write e.g. 30m, 1h30m, 90s or 1.5h")
    if not seconds > 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return seconds


def format_minutes(seconds: float) -> str:
    """Return ``seconds`` as ``"4.2 min"`` (or ``"35 s"`` under a minute)."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"
