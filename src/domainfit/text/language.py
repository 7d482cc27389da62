"""Language identification of documents and queries, and the language slices of ``bench`` and ``eval``.

Backed by py3langid (a naive Bayes model over byte n-grams that ships with
the package: offline, about 30 µs per short text). Short texts are noisy, so a
text with too few letters, or whose best language is not confident enough, is
``und`` (undetermined) rather than a guess.

Example: ``LanguageDetector().language("Wie setze ich mein Passwort zurück?") == "de"``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from domainfit.core.errors import UsageError
from domainfit.core.types import Document, Qrels, Query
from domainfit.text.config import DEFAULT_TEXT, TextConfig
from domainfit.text.normalize import normalize_text

UNDETERMINED = "und"
"""Language of a text that is too short or too ambiguous to tell (ISO 639-2 ``und``)."""

LANGUAGE_SLICE = "language"
"""Slice of the detected query language."""

CROSS_LANGUAGE_SLICE = "cross_language"
"""Slice telling whether a query's language differs from that of its relevant documents: yes, no or und."""

_NOT_A_LANGUAGE = frozenset({"zxx"})  # "no linguistic content"
_MIN_SHARE = 0.02  # a language counts towards "multilingual" from this share (and at least 2 texts)


@lru_cache(maxsize=4)
def _identifier(languages: tuple[str, ...]) -> Any:
    """Load the py3langid model once per language restriction (empty: every language)."""
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as exc:  # pragma: no cover - py3langid is a core dependency
        raise ImportError("language identification needs py3langid: pip install py3langid") from exc
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if languages:
        unknown = sorted(set(languages) - set(identifier.labels))
        if unknown:
            raise UsageError(f"[text] languages: unknown language code(s) {unknown}; known: {identifier.labels}")
        identifier.set_languages(list(languages))
    return identifier


def known_languages() -> list[str]:
    """Return the ISO 639-1 codes the detector can tell apart."""
    return list(_identifier(()).labels)


def _detector_version() -> str:
    """Return ``py3langid <version>``."""
    import py3langid

    return f"py3langid {py3langid.__version__}"


@dataclass(frozen=True)
class LanguageGuess:
    """A detected language (ISO 639-1 code, or ``und``) and the detector's confidence in [0, 1]."""

    language: str
    confidence: float


class LanguageDetector:
    """Detect the language of texts, caching every answer.

    Inputs: the languages to choose from (empty: all the detector knows), the
    confidence below which a text is ``und``, the fewest letters a text needs,
    and how many leading characters of a long text are read.
    Requirements: ``py3langid``. Texts are normalised (`normalize_text`) first.
    Example: ``LanguageDetector(languages=["en", "de"]).detect("Passwort vergessen")``.
    """

    def __init__(
        self,
        languages: Iterable[str] = (),
        *,
        min_confidence: float = 0.5,
        min_letters: int = 4,
        max_chars: int = 2000,
    ) -> None:
        self.languages = tuple(sorted(set(languages)))
        self.min_confidence, self.min_letters, self.max_chars = min_confidence, min_letters, max_chars
        self._cache: dict[str, LanguageGuess] = {}

    @classmethod
    def from_config(cls, config: TextConfig) -> LanguageDetector:
        """Build a detector from the ``[text]`` settings."""
        return cls(
            config.languages, min_confidence=config.language_min_confidence, min_letters=config.language_min_letters
        )

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob, for reports and manifests."""
        return {
            "detector": _detector_version(),
            "languages": list(self.languages),
            "min_confidence": self.min_confidence,
            "min_letters": self.min_letters,
            "max_chars": self.max_chars,
        }

    def detect(self, text: str) -> LanguageGuess:
        """Return the language of ``text`` and the confidence; ``und`` when too short or unsure."""
        key = normalize_text(text[: self.max_chars])
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._detect(key)
        return found

    def _detect(self, text: str) -> LanguageGuess:
        """Classify one normalised text (no caching)."""
        if sum(1 for c in text if c.isalpha()) < self.min_letters:
            return LanguageGuess(UNDETERMINED, 0.0)
        language, confidence = _identifier(self.languages).classify(text)
        if language in _NOT_A_LANGUAGE or confidence < self.min_confidence:
            return LanguageGuess(UNDETERMINED, float(confidence))
        return LanguageGuess(str(language), float(confidence))

    def language(self, text: str) -> str:
        """Return only the language code of ``text`` (see `detect`)."""
        return self.detect(text).language


_DETECTORS: dict[str, LanguageDetector] = {}


def shared_detector(config: TextConfig = DEFAULT_TEXT) -> LanguageDetector:
    """Return the detector of these ``[text]`` settings, shared (with its cache of answers) within the process."""
    key = repr((config.languages, config.language_min_confidence, config.language_min_letters))
    if key not in _DETECTORS:
        _DETECTORS[key] = LanguageDetector.from_config(config)
    return _DETECTORS[key]


def _main_languages(counts: Mapping[str, int]) -> list[str]:
    """Languages (not ``und``) with at least 2 texts and ``_MIN_SHARE`` of all texts, most frequent first."""
    total = sum(counts.values())
    floor = max(2, math.ceil(_MIN_SHARE * total))
    return [lang for lang, n in Counter(counts).most_common() if lang != UNDETERMINED and n >= floor]


@dataclass
class LanguageProfile:
    """Languages of a dataset's documents and judged queries, and which queries cross languages.

    ``documents`` and ``queries`` count texts per language (documents: those
    looked at, ``documents_seen`` of ``documents_total``); ``query_language``
    and ``cross_language`` label each judged query (``yes`` when its language is
    none of its relevant documents' languages, ``no`` when it is one of them,
    ``und`` when either side is undetermined); ``multilingual`` is True when
    the documents or the queries have two or more main languages (each at least
    2 texts and 2% of them).
    """

    documents: dict[str, int]
    documents_seen: int
    documents_total: int
    queries: dict[str, int]
    query_language: dict[str, str] = field(default_factory=dict)
    cross_language: dict[str, str] = field(default_factory=dict)
    detector: dict[str, Any] = field(default_factory=dict)

    @property
    def multilingual(self) -> bool:
        """True when the documents or the queries have two or more main languages."""
        return len(_main_languages(self.documents)) > 1 or len(_main_languages(self.queries)) > 1

    def cross_language_ids(self) -> list[str]:
        """Return the ids of the queries flagged as cross-language."""
        return [qid for qid, flag in self.cross_language.items() if flag == "yes"]

    def summary(self, max_examples: int = 10) -> dict[str, Any]:
        """Return the JSON summary written into ``metrics.json`` (counts, flags and a few examples)."""
        flagged = self.cross_language_ids()
        return {
            "detector": self.detector,
            "multilingual": self.multilingual,
            "documents": dict(Counter(self.documents).most_common()),
            "documents_seen": self.documents_seen,
            "documents_total": self.documents_total,
            "queries": dict(Counter(self.queries).most_common()),
            "cross_language_queries": len(flagged),
            "cross_language_examples": [
                {"query_id": qid, "language": self.query_language[qid]} for qid in flagged[:max_examples]
            ],
        }


def _documents_to_read(corpus: Mapping[str, Document], qrels: Qrels, max_documents: int) -> list[str]:
    """Every relevant document of ``qrels``, then evenly spaced others up to ``max_documents`` in all."""
    relevant = list(dict.fromkeys(did for docs in qrels.values() for did, grade in docs.items() if grade > 0))
    chosen = dict.fromkeys(did for did in relevant if did in corpus)
    room = max(0, max_documents - len(chosen))
    ids = list(corpus)
    if room:
        step = max(1, len(ids) // room)
        chosen.update(dict.fromkeys(ids[::step][:room]))
    return list(chosen)


def _restricted(detector: LanguageDetector, languages: Iterable[str]) -> LanguageDetector:
    """Return a detector like ``detector`` that chooses only among ``languages`` (shared, with its cache)."""
    key = repr((sorted(languages), detector.min_confidence, detector.min_letters, detector.max_chars))
    if key not in _DETECTORS:
        _DETECTORS[key] = LanguageDetector(
            languages, min_confidence=detector.min_confidence, min_letters=detector.min_letters,
            max_chars=detector.max_chars,
        )  # fmt: skip
    return _DETECTORS[key]


def language_profile(
    corpus: Mapping[str, Document],
    queries: Mapping[str, Query],
    qrels: Qrels,
    detector: LanguageDetector | None = None,
    *,
    max_documents: int = 5000,
) -> LanguageProfile:
    """Detect the language of the judged queries and of the documents, and flag cross-language queries.

    Inputs: the corpus, the queries, the qrels whose queries are profiled, a
    detector (default: `shared_detector` of the default settings) and how many documents to read at
    most (every relevant document is read; the rest are sampled evenly).
    Output: a `LanguageProfile`.

    Short queries are where language identification goes wrong, mostly by
    picking a language the dataset does not use. So unless the detector is
    restricted to given languages, detection runs twice: first over every
    language the detector knows, then only among the dataset's main languages
    (those of at least 2 texts and 2% of the documents or of the queries).
    """
    detector = detector or shared_detector()
    doc_ids = _documents_to_read(corpus, qrels, max_documents)
    doc_texts = {did: corpus[did].full_text() for did in doc_ids}
    query_texts = {qid: queries[qid].text for qid in qrels if qid in queries}
    doc_language = {did: detector.language(text) for did, text in doc_texts.items()}
    query_language = {qid: detector.language(text) for qid, text in query_texts.items()}
    settings = detector.get_config_dict()
    if not detector.languages:
        main = sorted(
            set(_main_languages(Counter(doc_language.values())))
            | set(_main_languages(Counter(query_language.values())))
        )
        settings["dataset_languages"] = main
        if main:
            among = _restricted(detector, main)
            doc_language = {did: among.language(text) for did, text in doc_texts.items()}
            query_language = {qid: among.language(text) for qid, text in query_texts.items()}
    cross: dict[str, str] = {}
    for qid, lang in query_language.items():
        relevant = {doc_language.get(did, UNDETERMINED) for did, grade in qrels[qid].items() if grade > 0}
        relevant.discard(UNDETERMINED)
        cross[qid] = UNDETERMINED if lang == UNDETERMINED or not relevant else ("no" if lang in relevant else "yes")
    return LanguageProfile(
        documents=dict(Counter(doc_language.values())),
        documents_seen=len(doc_language),
        documents_total=len(corpus),
        queries=dict(Counter(query_language.values())),
        query_language=query_language,
        cross_language=cross,
        detector=settings,
    )


def wants_language_slices(profile: LanguageProfile, config: TextConfig = DEFAULT_TEXT) -> bool:
    """Tell whether the language slices are added: ``[text] language_slices`` on, or auto and multilingual."""
    mode = config.language_slices
    return mode == "on" or (mode == "auto" and profile.multilingual)


def language_slice_labels(profile: LanguageProfile, taken: Iterable[str] = ()) -> dict[str, dict[str, str]]:
    """Return ``{query_id: {"language": code, "cross_language": yes|no|und}}`` for `slice_table`.

    A slice name already ``taken`` (a query metadata field of the same name) is
    prefixed with ``detected_``.
    """
    used = set(taken)
    names = [name if name not in used else f"detected_{name}" for name in (LANGUAGE_SLICE, CROSS_LANGUAGE_SLICE)]
    return {
        qid: {names[0]: lang, names[1]: profile.cross_language.get(qid, UNDETERMINED)}
        for qid, lang in profile.query_language.items()
    }
