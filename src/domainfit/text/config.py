"""Settings of text hygiene: the ``[text]`` section of ``domainfit.toml``.

Text must be treated identically at training, indexing and query time, by
every stage, so the settings travel with every call that reads or encodes text:
loaders (`domainfit.data.beir.load_beir`, `domainfit.data.pairs.read_pairs`),
retrievers, training examples and generated queries take a `TextConfig`
(default: `DEFAULT_TEXT`, the defaults), and a stage passes its own ``[text]``
section to all of them, in this process and in launched training workers alike.
There is no process-wide setting.
"""

from __future__ import annotations

import re
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

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    def normalization(self) -> str:
        """Return the id of the normalisation these settings apply (`domainfit.text.normalize.normalization_id`)."""
        return normalization_id(self.normalize)

    def prepare(self, text: str) -> str:
        """Return ``text`` as every stage must see it: normalised when ``normalize`` is on, else unchanged."""
        return normalize_text(text) if self.normalize else text

    def prepare_all(self, texts: list[str]) -> list[str]:
        """Return `prepare` of every text, in order (the same list when normalisation is off)."""
        return [normalize_text(t) for t in texts] if self.normalize else texts


#: The default settings (normalisation on), for callers that were given none.
DEFAULT_TEXT = TextConfig()


def prepare_text(text: str, settings: TextConfig = DEFAULT_TEXT) -> str:
    """Return ``text`` prepared under ``settings`` (see `TextConfig.prepare`)."""
    return settings.prepare(text)


def prepare_texts(texts: list[str], settings: TextConfig = DEFAULT_TEXT) -> list[str]:
    """Return every text prepared under ``settings`` (see `TextConfig.prepare_all`)."""
    return settings.prepare_all(texts)
