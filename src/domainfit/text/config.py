"""Settings of text hygiene (the ``[text]`` section of ``domainfit.toml``) and the active settings of this process.

Text must be treated identically at training, indexing and query time, by
every stage, so these settings are process-wide: `domainfit.config.load_config`
activates the ``[text]`` section of the loaded file (`set_text_config`), and
every loader and encoder reads the active settings (`text_config`,
`prepare_text`). Library users who never load a config get the defaults.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domainfit.text.normalize import normalization_id, normalize_text


class TextConfig(BaseModel):
    """Settings of Unicode normalisation and language identification.

    ``normalize`` applies `domainfit.text.normalize.normalize_text` wherever text
    enters (loaders, BM25 and dense encoders, training examples).
    ``language_slices`` adds the ``language`` and ``cross_language`` slices to
    ``bench`` and ``eval``: ``auto`` when the documents or the queries are in
    more than one language, ``on`` always, ``off`` never. ``languages`` restricts
    language identification to these ISO 639-1 codes (empty: every language the
    detector knows). Texts with fewer than ``language_min_letters`` letters, or
    whose best language scores below ``language_min_confidence``, are ``und``
    (undetermined): short queries are noisy.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    normalize: bool = Field(True, description="NFKC + control-character clean-up at load, index and query time")
    language_slices: Literal["auto", "on", "off"] = Field("auto", description="slice bench/eval by language")
    languages: list[str] = Field(
        default_factory=list, description="restrict language identification to these ISO 639-1 codes"
    )
    language_min_confidence: float = Field(0.5, ge=0.0, le=1.0, description="below this, a text is 'und'")
    language_min_letters: int = Field(4, ge=1, description="texts with fewer letters are 'und'")

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        """Accept lower-case ISO 639 codes only (whether the detector knows them is checked when it loads)."""
        bad = [code for code in value if not re.fullmatch(r"[a-z]{2,3}", code)]
        if bad:
            raise ValueError(f"not ISO 639-1 language codes: {bad} (e.g. 'en', 'de', 'fr')")
        return sorted(set(value))

    def fingerprint(self) -> dict[str, Any]:
        """Return what decides how texts are treated: the settings and the normalisation id."""
        return {**self.model_dump(), "normalization": normalization_id(self.normalize)}


_ACTIVE: list[TextConfig] = [TextConfig()]


def set_text_config(config: TextConfig) -> None:
    """Make ``config`` the text settings of this process (called by `load_config`)."""
    _ACTIVE[0] = config


def text_config() -> TextConfig:
    """Return the active text settings."""
    return _ACTIVE[0]


def prepare_text(text: str) -> str:
    """Return ``text`` as every stage must see it: normalised when ``[text] normalize`` is on, else unchanged."""
    return normalize_text(text) if _ACTIVE[0].normalize else text


def prepare_texts(texts: list[str]) -> list[str]:
    """Return `prepare_text` of every text, in order (the same list when normalisation is off)."""
    return [normalize_text(t) for t in texts] if _ACTIVE[0].normalize else texts


def active_normalization() -> str:
    """Return the id of the active normalisation (see `domainfit.text.normalize.normalization_id`)."""
    return normalization_id(_ACTIVE[0].normalize)


MODEL_TEXT_FILE = "domainfit_text.json"
"""File in a saved model folder recording how its training text was normalised."""


def write_model_text_settings(folder: Path) -> Path:
    """Record the active text settings and normalisation id in a saved model folder; return the file written."""
    from domainfit.core.files import atomic_write_json

    path = Path(folder) / MODEL_TEXT_FILE
    atomic_write_json(path, {"text_normalization": active_normalization(), "text": text_config().model_dump()})
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


def normalization_mismatch(folder: Path | str | None) -> str | None:
    """Return a warning when a model was trained on text normalised otherwise than the active settings, else None.

    Only the rules are compared (on/off and `NORMALIZATION_VERSION`), not the
    Unicode database version, which differs between Python versions only for
    newly assigned characters.
    """
    trained = model_normalization(folder)
    active = active_normalization()
    if trained is None or trained.split("+")[0] == active.split("+")[0]:
        return None
    return (
        f"model {folder} was trained on text normalised as {trained!r}, but texts are now normalised as "
        f"{active!r}; set [text] normalize to match"
    )
