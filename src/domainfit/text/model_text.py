"""How a saved model's training text was normalised: recorded in its folder, checked when it is loaded.

A model trained on normalised text and queried with raw text (or the reverse)
silently loses quality, so the ``train`` stage records the normalisation in
the model folder and every retriever that loads a model folder warns when its
own text settings differ.
"""

from __future__ import annotations

import json
from pathlib import Path

from domainfit.core.files import atomic_write_json
from domainfit.text.config import TextConfig

MODEL_TEXT_FILE = "domainfit_text.json"
"""File in a saved model folder recording how its training text was normalised."""


def write_model_text_settings(folder: Path, settings: TextConfig) -> Path:
    """Record the text settings a model was trained with, and their normalisation id; return the file written."""
    path = Path(folder) / MODEL_TEXT_FILE
    atomic_write_json(path, {"text_normalization": settings.normalization(), "text": settings.model_dump()})
    return path


def model_normalization(folder: Path | str | None) -> str | None:
    """Return the normalisation id recorded in a model folder, or None when the folder records none."""
    if folder is None:
        return None
    path = Path(folder) / MODEL_TEXT_FILE
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("text_normalization")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def normalization_mismatch(folder: Path | str | None, settings: TextConfig) -> str | None:
    """Return a warning when a model was trained on text normalised otherwise than ``settings``, else None.

    Only the rules are compared (on/off and `NORMALIZATION_VERSION`), not the
    Unicode database version, which differs between Python versions only for
    newly assigned characters.
    """
    trained = model_normalization(folder)
    active = settings.normalization()
    if trained is None or trained.split("+")[0] == active.split("+")[0]:
        return None
    return (
        f"model {folder} was trained on text normalised as {trained!r}, but texts are now normalised as "
        f"{active!r}; set [text] normalize to match"
    )
