"""Offline query generators: no model, no network, deterministic under a seed.

* `TitleGenerator` (``title``): an informative title is the query, the body the positive.
* `HeadingGenerator` (``heading``): a section heading is the query, that section the positive.
* `ClozeGenerator` (``cloze``, inverse cloze task): a sentence is the query, the
  passage without it the positive.
* `SalientGenerator` (``salient``): 2-5 word keyword queries from a document's
  top TF-IDF terms over the corpus and its identifier-like tokens
  (``ERR_AUTH_702``, ``os.path.join``, ``v2.3.1``), the short, jargon-heavy
  queries people actually type.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from domainfit.core.types import Document
from domainfit.data.splits import normalise_text
from domainfit.synth.base import Advance, QueryGenerator, SyntheticQuery, _no_progress
from domainfit.synth.textparse import find_identifiers, plain_text, sentence_spans, split_sections

#: Titles and headings that name no topic, so they make poor queries.
GENERIC_TITLES = frozenset(
    {
        "abstract", "api", "appendix", "arguments", "attributes", "background", "changelog", "changes",
        "conclusion", "contents", "description", "details", "discussion", "document", "draft", "example",
        "examples", "faq", "further reading", "home", "index", "introduction", "methods", "misc",
        "miscellaneous", "new document", "notes", "other", "overview", "parameters", "raises", "readme",
        "references", "release notes", "returns", "see also", "summary", "table of contents", "todo",
        "untitled", "usage", "warning", "warnings", "yields",
    }
)  # fmt: skip
_GENERIC_NUMBERED = re.compile(r"^(?:page|chapter|section|part|doc|document|untitled|slide|item)?\s*[\d\W]*$")


def _rng(seed: int, doc_id: str, name: str) -> random.Random:
    """Return a random generator for one (seed, document, generator): the same inputs always draw the same."""
    return random.Random(f"{seed}\x00{name}\x00{doc_id}")


def _stop_words() -> frozenset[str]:
    """English stop words (scikit-learn's list)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def informative(text: str, max_words: int = 12) -> bool:
    """Return True when a title or heading can serve as a query.

    It needs 1 to ``max_words`` words, a word with a letter that is not a stop
    word, and must not be generic (``Introduction``, ``Parameters``, ``Page 3``).
    """
    norm = normalise_text(text)
    words = norm.split()
    if not words or len(words) > max_words or norm in GENERIC_TITLES or _GENERIC_NUMBERED.match(norm):
        return False
    stop = _stop_words()
    return any(any(c.isalpha() for c in w) and w not in stop for w in words)


class TitleGenerator(QueryGenerator):
    """The title as the query and the body as the positive, when the title is informative.

    Inputs: ``max_words`` of a usable title; ``fit`` counts titles over the
    corpus so a title that several documents share (``Troubleshooting``) is
    skipped as ambiguous. Output: at most one query per document.
    """

    name = "title"

    def __init__(self, max_words: int = 12) -> None:
        self.max_words = max_words
        self._title_counts: Counter[str] = Counter()

    def fit(self, corpus: Sequence[Document]) -> None:
        """Count normalised titles over the corpus."""
        self._title_counts = Counter(normalise_text(d.title) for d in corpus if d.title.strip())

    def generate(self, docs: Sequence[Document], advance: Advance = _no_progress) -> list[SyntheticQuery]:
        """Return one query per document with an informative, unshared title and a non-empty body."""
        out = []
        for doc in docs:
            title = " ".join(doc.title.split())
            norm = normalise_text(title)
            if (
                title
                and doc.text.strip()
                and informative(title, self.max_words)
                and self._title_counts.get(norm, 1) <= 1
                and norm != normalise_text(doc.text)
            ):
                out.append(self.query(title, doc.id, positive_text=doc.text.strip()))
            advance(1)
        return out

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob."""
        return {"name": self.name, "max_words": self.max_words}


class HeadingGenerator(QueryGenerator):
    """Each informative section heading as a query, its section as the positive.

    Inputs: the most headings used per document and the fewest words a section
    needs. Headings equal to the document title are skipped (the title
    generator covers them). Markdown, reStructuredText and HTML headings are
    recognised (see `domainfit.synth.textparse.split_sections`).
    """

    name = "heading"

    def __init__(self, max_per_document: int = 8, min_section_words: int = 5) -> None:
        self.max_per_document = max_per_document
        self.min_section_words = min_section_words

    def generate(self, docs: Sequence[Document], advance: Advance = _no_progress) -> list[SyntheticQuery]:
        """Return up to ``max_per_document`` (heading, section) queries per document, in document order."""
        out = []
        for doc in docs:
            title = normalise_text(doc.title)
            seen: set[str] = set()
            for section in split_sections(doc.text):
                norm = normalise_text(section.heading)
                if len(seen) >= self.max_per_document or norm in seen or norm == title:
                    continue
                if informative(section.heading) and len(section.body.split()) >= self.min_section_words:
                    seen.add(norm)
                    out.append(
                        self.query(
                            section.heading, doc.id, positive_text=section.body, metadata={"level": section.level}
                        )
                    )
            advance(1)
        return out

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob."""
        return {
            "name": self.name,
            "max_per_document": self.max_per_document,
            "min_section_words": self.min_section_words,
        }


_CODE_MARKERS = (">>>", "...", " = ", "{", "}", "\\", "#", "|", "$ ")


def _prose(sentence: str) -> bool:
    """Return True for prose: mostly letters; not code, a heading, a table row or an intro ending ':'."""
    letters = sum(c.isalpha() or c.isspace() for c in sentence)
    return (
        letters >= 0.75 * len(sentence)
        and not sentence.endswith(":")
        and not any(marker in sentence for marker in _CODE_MARKERS)
    )


class ClozeGenerator(QueryGenerator):
    """Inverse cloze task: a sentence as the query, the passage without it as the positive.

    Inputs: sentences per document, word limits of a query sentence, the seed.
    A document needs at least two sentences, and the passage left over must
    keep ``min_words`` words. The positive is the title (if any) and the text
    with the chosen sentence cut out.
    """

    name = "cloze"

    def __init__(self, per_document: int = 1, min_words: int = 4, max_words: int = 40, seed: int = 13) -> None:
        self.per_document, self.min_words, self.max_words, self.seed = per_document, min_words, max_words, seed

    def _one(self, doc: Document) -> list[SyntheticQuery]:
        """Return the cloze queries of one document."""
        text = doc.text
        spans = sentence_spans(text)
        if len(spans) < 2:
            return []
        candidates = []
        for start, end in spans:
            sentence = " ".join(text[start:end].split())
            if self.min_words <= len(sentence.split()) <= self.max_words and _prose(sentence):
                candidates.append((start, end, sentence))
        rng = _rng(self.seed, doc.id, self.name)
        chosen = sorted(rng.sample(candidates, min(self.per_document, len(candidates))))
        out = []
        for start, end, sentence in chosen:
            rest = " ".join(f"{text[:start].rstrip()} {text[end:].lstrip()}".split(" ")).strip()
            rest = re.sub(r"[ \t]{2,}", " ", rest)
            if len(rest.split()) < self.min_words:
                continue
            positive = f"{doc.title}\n{rest}" if doc.title.strip() else rest
            out.append(self.query(sentence, doc.id, positive_text=positive))
        return out

    def generate(self, docs: Sequence[Document], advance: Advance = _no_progress) -> list[SyntheticQuery]:
        """Return up to ``per_document`` cloze queries per document."""
        out = []
        for doc in docs:
            out.extend(self._one(doc))
            advance(1)
        return out

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob."""
        return {
            "name": self.name,
            "per_document": self.per_document,
            "min_words": self.min_words,
            "max_words": self.max_words,
            "seed": self.seed,
        }


def _jaccard(a: set[str], b: set[str]) -> float:
    """Token-set Jaccard similarity (0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


#: Words no one searches for: stubs of English contractions ("isn't" -> "isn") and code boilerplate.
_NON_KEYWORDS = frozenset({"aren", "couldn", "didn", "doesn", "don", "hadn", "hasn", "haven", "isn", "ll", "shouldn",
                           "wasn", "weren", "won", "wouldn", "ve", "re", "self", "cls", "args", "kwargs"})  # fmt: skip


def _keyword(term: str) -> bool:
    """Return True for a term worth typing: each word has 3+ characters, mostly letters, no contraction stub."""
    return all(
        len(w) >= 3 and sum(c.isalpha() for c in w) >= 0.6 * len(w) and w not in _NON_KEYWORDS for w in term.split()
    )


def _surface(term: str, words: dict[str, str]) -> str:
    """Return the term as written in the document (``words``: lowercase -> first spelling); plain words lowercased."""
    out = []
    for word in term.split():
        found = words.get(word, word)
        out.append(found if any(c.isupper() for c in found[1:]) else found.lower())
    return " ".join(out)


def _spellings(text: str) -> dict[str, str]:
    """Map each lowercased word of ``text`` to its first spelling (``saml`` -> ``SAML``)."""
    out: dict[str, str] = {}
    for word in re.findall(r"\w+", text):
        out.setdefault(word.lower(), word)
    return out


class SalientGenerator(QueryGenerator):
    """Short keyword queries from a document's most salient terms and identifiers.

    ``fit`` learns TF-IDF weights (unigrams and bigrams, English stop words
    removed, sublinear tf) and identifier document frequencies over the whole
    corpus. Each query mixes a rare identifier of the document (if any) with
    top TF-IDF terms, ``min_words`` to ``max_words`` words in the order they
    appear in the document, e.g. ``ERR_AUTH_702 session token expired``.
    Requirements: scikit-learn. Deterministic under ``seed``.
    """

    name = "salient"

    def __init__(
        self,
        per_document: int = 2,
        min_words: int = 2,
        max_words: int = 5,
        top_terms: int = 8,
        seed: int = 13,
    ) -> None:
        self.per_document, self.min_words, self.max_words = per_document, min_words, max_words
        self.top_terms, self.seed = top_terms, seed
        self._vectorizer: Any = None
        self._identifier_df: Counter[str] = Counter()
        self._n_docs = 0

    def fit(self, corpus: Sequence[Document]) -> None:
        """Fit TF-IDF on the corpus and count in how many documents each identifier appears."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = [plain_text(d.full_text()) for d in corpus]
        self._n_docs = len(texts)
        self._vectorizer = TfidfVectorizer(
            lowercase=True,
            stop_words="english",
            token_pattern=r"(?u)\b[^\W\d_][\w]+\b",
            ngram_range=(1, 2),
            sublinear_tf=True,
            max_df=0.5 if len(texts) >= 4 else 1.0,
            dtype=np.float32,
        )
        try:
            self._vectorizer.fit(texts)
        except ValueError:  # an empty vocabulary: every word is a stop word
            self._vectorizer = None
        self._identifier_df = Counter(i.lower() for text in texts for i in set(find_identifiers(text)))

    def _terms(self, row: Any, names: np.ndarray) -> list[str]:
        """Return the document's top TF-IDF terms, best first, with overlapping unigrams/bigrams removed."""
        order = np.argsort(-row.data, kind="stable")
        picked: list[str] = []
        used: set[str] = set()
        for k in order:
            term = str(names[row.indices[k]])
            words = term.split()
            if used.intersection(words) or not _keyword(term):
                continue
            picked.append(term)
            used.update(words)
            if len(picked) >= self.top_terms:
                break
        return picked

    def _identifiers(self, doc: Document) -> list[str]:
        """Return the document's identifiers, rarest in the corpus first; ones in over half the corpus are left out."""
        found = find_identifiers(plain_text(doc.full_text()))
        limit = max(1, self._n_docs // 2)
        keep = [i for i in found if self._identifier_df.get(i.lower(), 1) <= limit]
        return sorted(keep, key=lambda i: (self._identifier_df.get(i.lower(), 1), found.index(i)))

    def _compose(self, parts: list[str], text: str) -> str:
        """Join query parts in the order they first appear in the document."""
        lowered = text.lower()

        def position(part: str) -> int:
            at = lowered.find(part.lower())
            return at if at >= 0 else len(lowered)

        return " ".join(sorted(parts, key=position))

    def _pick(self, rng: random.Random, attempt: int, identifiers: list[str], terms: list[str]) -> list[str]:
        """Choose the parts of one query: the attempt's identifier (if any), then terms up to a drawn length."""
        parts = [identifiers[attempt]] if attempt < len(identifiers) else []
        covered = set(normalise_text(" ".join(parts)).split())
        budget = rng.randint(self.min_words, self.max_words) - len(parts)
        pool = terms if attempt == 0 else rng.sample(terms, len(terms))
        for term in pool:
            size = len(term.split())
            if budget <= 0:
                break
            if size <= budget and not set(normalise_text(term).split()) <= covered:
                parts.append(term)
                budget -= size
        return parts

    def _queries(self, doc: Document, terms: list[str]) -> list[SyntheticQuery]:
        """Build up to ``per_document`` distinct keyword queries for one document.

        The first query takes the rarest identifier and the best terms; later
        ones the next identifiers and a seeded shuffle of the top terms.
        """
        text = plain_text(doc.full_text())
        rng = _rng(self.seed, doc.id, self.name)
        identifiers = self._identifiers(doc)
        lowered_ids = {i.lower() for i in identifiers}
        spellings = _spellings(text)
        surfaces = [s for s in (_surface(t, spellings) for t in terms) if s.lower() not in lowered_ids]
        out: list[SyntheticQuery] = []
        seen: list[set[str]] = []
        for attempt in range(self.per_document * 3):
            if len(out) >= self.per_document:
                break
            parts = self._pick(rng, attempt, identifiers, surfaces)
            words = sum(len(p.split()) for p in parts)
            query = self._compose(parts, text)
            tokens = set(normalise_text(query).split())
            if self.min_words <= words <= self.max_words and all(_jaccard(tokens, t) < 0.5 for t in seen):
                seen.append(tokens)
                out.append(self.query(query, doc.id, metadata={"identifiers": identifiers[:3]}))
        return out

    def generate(self, docs: Sequence[Document], advance: Advance = _no_progress) -> list[SyntheticQuery]:
        """Return up to ``per_document`` keyword queries per document (``fit`` on the corpus first)."""
        if self._n_docs == 0:
            self.fit(docs)
        out: list[SyntheticQuery] = []
        names = self._vectorizer.get_feature_names_out() if self._vectorizer is not None else np.array([])
        for start in range(0, len(docs), 512):
            chunk = docs[start : start + 512]
            rows = (
                self._vectorizer.transform([plain_text(d.full_text()) for d in chunk])
                if self._vectorizer is not None
                else None
            )
            for k, doc in enumerate(chunk):
                terms = self._terms(rows[k], names) if rows is not None else []
                out.extend(self._queries(doc, terms))
            advance(len(chunk))
        return out

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob."""
        return {
            "name": self.name,
            "per_document": self.per_document,
            "min_words": self.min_words,
            "max_words": self.max_words,
            "top_terms": self.top_terms,
            "seed": self.seed,
            "tfidf": "unigrams+bigrams, english stop words, sublinear tf, max_df 0.5",
        }
