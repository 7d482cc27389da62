"""Split long documents into chunks that fit a model's window, counted in the model's own tokens.

A bi-encoder sees at most ``max_seq_length`` tokens of a text and silently drops the
rest, so a model with a 256-token window reads only the first page of a 50-page
document. Chunking turns each document into pieces the model reads whole; retrieval
then scores chunks and aggregates them back to documents (`domainfit.retrieval.chunked`).

Methods (``[chunking] method``):

* ``none`` (the default): documents are encoded whole, as before. Texts longer than the
  window are not truncated silently: `check_truncation` warns once, with counts. The
  default stays ``none`` so that the results and the cost of existing runs do not change
  behind the user's back; the warning says how to turn chunking on.
* ``auto``: ``recursive`` when at least one document exceeds the window, else ``none``.
* ``fixed``: windows of exactly ``size`` tokens of the model's tokenizer, consecutive
  windows sharing exactly ``overlap`` tokens (the last window may be shorter). A window
  may begin or end inside a word; re-tokenised on its own such a piece can take a token
  more, which the truncation check then reports (``recursive`` cuts at word starts).
* ``structural``: sections (Markdown / reST / HTML headings) split into paragraphs;
  consecutive paragraphs of one section are merged while they fit. A paragraph longer
  than the window is kept whole (and reported by the truncation check).
* ``recursive``: section, then paragraph, line, sentence and finally token windows
  (with ``overlap``, cut at word starts), until every piece fits; small neighbours are
  merged up to ``size``. Every chunk, prefix included, fits the window: this is checked
  by re-tokenising the final text and fixed if needed.

An optional prefix (document title and the heading trail of the chunk's section) is put
in front of every chunk; it counts against the window (and is capped at a quarter of it).
With ``prefix_heading`` on, a heading line is carried by the prefixes of its section's
chunks rather than by the text of one chunk (``structural`` and ``recursive``). A chunk
keeps its parent document id and character offsets:
``chunk.text == document.text[chunk.start:chunk.end]``.

Sizes are token counts of the text itself, without special tokens ([CLS], [SEP]) and
without the prefix; ``size = None`` means the model's whole window.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domainfit.core.errors import UsageError
from domainfit.core.types import Document
from domainfit.data.config import ChunkingConfig
from domainfit.data.structure import LINE, PARAGRAPH, SENTENCE, Section, Span, find_sections, split_spans, trim

# the truncation check lives in `domainfit.data.truncation`; its names are re-exported here
from domainfit.data.truncation import TruncationReport as TruncationReport
from domainfit.data.truncation import TruncationWarning as TruncationWarning
from domainfit.data.truncation import _model_tokenizer
from domainfit.data.truncation import check_truncation as check_truncation
from domainfit.data.truncation import max_seq_length as max_seq_length
from domainfit.data.truncation import token_lengths as token_lengths

CHUNKERS: tuple[str, ...] = ("fixed", "structural", "recursive")


@dataclass(frozen=True)
class Chunk:
    """One piece of a document.

    ``text`` is ``document.text[start:end]`` (character offsets into the document
    text, the title excluded); ``token_start``/``token_end`` index the document's
    tokens (without special tokens); ``prefix`` (title and heading trail, ending in a
    newline, or empty) goes in front of the text when encoding; ``heading`` is the
    heading trail of the section the chunk starts in.
    """

    id: str
    doc_id: str
    index: int
    start: int
    end: int
    text: str
    token_start: int
    token_end: int
    prefix: str = ""
    heading: str = ""

    @property
    def n_tokens(self) -> int:
        """Tokens of the chunk text (prefix and special tokens excluded)."""
        return self.token_end - self.token_start

    def encode_text(self) -> str:
        """Return the text the encoder sees: prefix then chunk text."""
        return self.prefix + self.text

    def to_json(self) -> dict[str, Any]:
        """Return the chunk's place in its document (no text), for artifacts."""
        return {
            "id": self.id,
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "token_start": self.token_start,
            "token_end": self.token_end,
            "heading": self.heading,
        }


class _Tokens:
    """Character offsets of one text's tokens; counts the tokens inside character spans."""

    def __init__(self, offsets: Sequence[tuple[int, int]]) -> None:
        self.offsets = [(int(a), int(b)) for a, b in offsets]
        self.starts = [a for a, _ in self.offsets]

    def __len__(self) -> int:
        return len(self.offsets)

    def index(self, char: int) -> int:
        """Return the index of the first token that starts at or after ``char``."""
        return bisect.bisect_left(self.starts, char)

    def count(self, start: int, end: int) -> int:
        """Return how many tokens start inside ``[start, end)``."""
        return self.index(end) - self.index(start)

    def word_start(self, i: int) -> bool:
        """Return True when token ``i`` begins a word (white space, or the text start, before it)."""
        return i == 0 or i >= len(self.offsets) or self.offsets[i][0] > self.offsets[i - 1][1]

    def span(self, first: int, last: int) -> Span:
        """Return the character span of tokens ``[first, last)``."""
        return self.offsets[first][0], self.offsets[last - 1][1]


def token_offsets(tokenizer: Any, texts: Sequence[str], batch_size: int = 256) -> list[list[tuple[int, int]]]:
    """Tokenise ``texts`` (no special tokens) with a fast HF tokenizer; return each text's token character offsets."""
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError("chunking needs a fast (Rust) Hugging Face tokenizer that returns offsets")
    out: list[list[tuple[int, int]]] = []
    for begin in range(0, len(texts), batch_size):
        batch = list(texts[begin : begin + batch_size])
        enc = tokenizer(batch, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        out.extend([[(int(a), int(b)) for a, b in row] for row in enc["offset_mapping"]])
    return out


def model_window(model: Any, prompt: str = "") -> int:
    """Return the tokens of text a model reads: max sequence length minus special tokens and the prompt's tokens."""
    tokenizer = _model_tokenizer(model)
    prompt_tokens = len(token_offsets(tokenizer, [prompt])[0]) if prompt else 0
    return max_seq_length(model) - int(tokenizer.num_special_tokens_to_add(pair=False)) - prompt_tokens


class Chunker:
    """Split documents into chunks that fit a window of ``window`` tokens.

    Inputs: a fast HF tokenizer (the model's own), the window in text tokens (see
    `model_window`), the method (``fixed``, ``structural`` or ``recursive``), ``size``
    (None: the window), ``overlap``, and whether to prefix the title and heading trail.
    Raises `UsageError` when ``size`` exceeds the window or ``overlap >= size``.
    Example: ``Chunker.for_model(model, ChunkingConfig(method="recursive")).chunk(doc)``.
    """

    def __init__(
        self,
        tokenizer: Any,
        window: int,
        *,
        method: str = "recursive",
        size: int | None = None,
        overlap: int = 0,
        prefix_title: bool = True,
        prefix_heading: bool = True,
    ) -> None:
        if method not in CHUNKERS:
            raise UsageError(f"chunking method {method!r} is not a chunker; use one of {', '.join(CHUNKERS)}")
        if window < 8:
            raise UsageError(f"the model window ({window} tokens) is too small to chunk for")
        self.size = window if size is None else int(size)
        if self.size > window:
            raise UsageError(
                f"chunking size {self.size} exceeds the model window of {window} tokens "
                "(max_seq_length minus special tokens); lower [chunking] size or raise max_seq_length"
            )
        if self.size < 8:
            raise UsageError(f"chunking size must be at least 8 tokens, got {self.size}")
        if not 0 <= overlap < self.size:
            raise UsageError(f"chunking overlap ({overlap}) must be >= 0 and smaller than size ({self.size})")
        self.tokenizer, self.window, self.method, self.overlap = tokenizer, window, method, int(overlap)
        self.prefix_title, self.prefix_heading = prefix_title, prefix_heading
        self._prefixes: dict[tuple[str, tuple[str, ...]], tuple[str, int]] = {}

    @classmethod
    def for_model(
        cls,
        model: Any,
        config: ChunkingConfig,
        *,
        method: str | None = None,
        size: int | None = None,
        overlap: int | None = None,
        prompt: str = "",
    ) -> Chunker:
        """Build a chunker for a sentence-transformers model from the ``[chunking]`` settings.

        ``method``/``size``/``overlap`` override the config (``auto`` must be resolved
        first); ``prompt`` is the document prompt the model prepends (its tokens count).
        """
        return cls(
            _model_tokenizer(model),
            model_window(model, prompt),
            method=method or config.method,
            size=config.size if size is None else size,
            overlap=config.overlap if overlap is None else overlap,
            prefix_title=config.prefix_title,
            prefix_heading=config.prefix_heading,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """Return every knob, for reports and manifests."""
        return {
            "method": self.method,
            "size": self.size,
            "overlap": self.overlap,
            "window": self.window,
            "prefix_title": self.prefix_title,
            "prefix_heading": self.prefix_heading,
        }

    # -- prefixes ---------------------------------------------------------------------------

    def _prefix(self, title: str, path: tuple[str, ...]) -> tuple[str, int]:
        """Return the prefix text for a title and heading trail, and its token count (capped at a quarter window)."""
        key = (title if self.prefix_title else "", path if self.prefix_heading else ())
        if key not in self._prefixes:
            parts = [p for p in (key[0].strip(), " > ".join(key[1])) if p]
            text = "\n".join(parts)
            offsets = token_offsets(self.tokenizer, [text])[0] if text else []
            cap = self.window // 4
            if len(offsets) > cap:
                text = text[: offsets[cap][0]].rstrip()
                offsets = offsets[:cap]
            self._prefixes[key] = (text + "\n" if text else "", len(offsets))
        return self._prefixes[key]

    def _budget(self, prefix_tokens: int) -> tuple[int, int]:
        """Return (tokens of text per chunk, overlap) once a prefix of ``prefix_tokens`` takes its share."""
        budget = min(self.size, self.window - prefix_tokens)
        overlap = self.overlap if budget == self.size else (self.overlap * budget) // self.size
        return budget, overlap

    # -- splitting --------------------------------------------------------------------------

    def _windows(self, tok: _Tokens, first: int, last: int, budget: int, overlap: int, snap: bool) -> list[Span]:
        """Token windows over tokens ``[first, last)``; with ``snap``, cut at word starts where possible."""
        out: list[Span] = []
        i = first
        while i < last:
            j = min(i + budget, last)
            if snap and j < last:
                k = j
                while k > i + budget // 2 and not tok.word_start(k):
                    k -= 1
                j = k if k > i + budget // 2 else j
            out.append(tok.span(i, j))
            if j >= last:
                break
            nxt = j - overlap
            while snap and i < nxt < j and not tok.word_start(nxt):
                nxt += 1
            i = max(nxt, i + 1)
        return out

    def _split(self, text: str, tok: _Tokens, span: Span, level: int, budget: int, overlap: int) -> list[Span]:
        """Split one span until every piece fits ``budget`` (recursive) or down to paragraphs (structural)."""
        start, end = trim(text, *span)
        if start >= end:
            return []
        if tok.count(start, end) <= budget:
            return [(start, end)]
        separators = (PARAGRAPH,) if self.method == "structural" else (PARAGRAPH, LINE, SENTENCE)
        if level >= len(separators):
            if self.method == "structural":
                return [(start, end)]
            return self._windows(tok, tok.index(start), tok.index(end), budget, overlap, snap=True)
        parts = split_spans(text, start, end, separators[level])
        if len(parts) <= 1:
            return self._split(text, tok, (start, end), level + 1, budget, overlap)
        pieces = [piece for part in parts for piece in self._split(text, tok, part, level + 1, budget, overlap)]
        return _merge(pieces, tok, budget)

    def _spans(self, doc: Document, tok: _Tokens) -> list[tuple[Span, Section]]:
        """Return the chunk spans of one document, each with the section it starts in."""
        text = doc.text
        sections = find_sections(text)
        if self.method == "fixed":
            longest = max(self._prefix(doc.title, s.path)[1] for s in sections)
            budget, overlap = self._budget(longest)
            spans = self._fixed(tok, budget, overlap)
            starts = [s.start for s in sections]
            return [(span, sections[max(0, bisect.bisect_right(starts, span[0]) - 1)]) for span in spans]
        out: list[tuple[Span, Section]] = []
        for section in sections:
            budget, overlap = self._budget(self._prefix(doc.title, section.path)[1])
            # with heading prefixes on, the heading line lives in the prefix, not in a chunk of its own
            first = section.body_start if self.prefix_heading and section.path else section.start
            spans = self._split(text, tok, (first, section.end), 0, budget, overlap)
            out.extend((span, section) for span in spans)
        return out

    def _fixed(self, tok: _Tokens, budget: int, overlap: int) -> list[Span]:
        """Exact token windows over the whole text: ``budget`` tokens each, ``overlap`` shared."""
        return self._windows(tok, 0, len(tok), budget, overlap, snap=False)

    def _make(self, doc: Document, tok: _Tokens, index: int, span: Span, section: Section) -> Chunk:
        """Build the chunk for one span of a document (a chunk holding the heading line omits it from the prefix)."""
        path = section.path if span[0] >= section.body_start else section.path[:-1]
        return self._build(doc, tok, index, span, self._prefix(doc.title, path)[0], " > ".join(section.path))

    @staticmethod
    def _build(doc: Document, tok: _Tokens, index: int, span: Span, prefix: str, heading: str) -> Chunk:
        """Build a chunk from its span, prefix and heading trail."""
        start, end = span
        first = tok.index(start)
        return Chunk(
            id=f"{doc.id}#{index}",
            doc_id=doc.id,
            index=index,
            start=start,
            end=end,
            text=doc.text[start:end],
            token_start=first,
            token_end=first + tok.count(start, end),
            prefix=prefix,
            heading=heading,
        )

    def _chunk_one(self, doc: Document, offsets: Sequence[tuple[int, int]]) -> list[Chunk]:
        """Chunk one document whose token offsets are known."""
        tok = _Tokens(offsets)
        spans = self._spans(doc, tok) if len(tok) else []
        if not spans:  # empty or blank text: one chunk so the title still finds the document
            return [self._make(doc, tok, 0, (0, 0), Section(0, 0, 0, ()))]
        chunks = [self._make(doc, tok, i, span, section) for i, (span, section) in enumerate(spans)]
        if self.method == "recursive":
            chunks = self._enforce_window(doc, tok, chunks)
        return chunks

    def _enforce_window(self, doc: Document, tok: _Tokens, chunks: list[Chunk]) -> list[Chunk]:
        """Re-tokenise each chunk as encoded; re-split any that exceeds the window (cut-word effects)."""
        for _ in range(4):
            lengths = [len(o) for o in token_offsets(self.tokenizer, [c.encode_text() for c in chunks])]
            if all(n <= self.window for n in lengths):
                return chunks
            pieces: list[tuple[Span, Chunk]] = []
            for chunk, n in zip(chunks, lengths, strict=True):
                if n <= self.window:
                    pieces.append(((chunk.start, chunk.end), chunk))
                    continue
                budget = max(1, chunk.n_tokens - (n - self.window))
                windows = self._windows(tok, chunk.token_start, chunk.token_end, budget, 0, snap=True)
                pieces += [(span, chunk) for span in windows]
            chunks = [self._build(doc, tok, i, span, c.prefix, c.heading) for i, (span, c) in enumerate(pieces)]
        return chunks

    def chunk(self, doc: Document) -> list[Chunk]:
        """Split one document; output: its chunks in text order (at least one)."""
        return self._chunk_one(doc, token_offsets(self.tokenizer, [doc.text])[0])

    def chunk_corpus(self, corpus: Mapping[str, Document] | Iterable[Document], batch_size: int = 64) -> list[Chunk]:
        """Split every document of a corpus; output: all chunks, document by document in corpus order."""
        docs = list(corpus.values()) if isinstance(corpus, Mapping) else list(corpus)
        out: list[Chunk] = []
        for begin in range(0, len(docs), batch_size):
            batch = docs[begin : begin + batch_size]
            for doc, offsets in zip(batch, token_offsets(self.tokenizer, [d.text for d in batch]), strict=True):
                out.extend(self._chunk_one(doc, offsets))
        return out


def _merge(pieces: list[Span], tok: _Tokens, budget: int) -> list[Span]:
    """Greedily join neighbouring spans while the joined span still fits ``budget`` tokens."""
    out: list[Span] = []
    for start, end in pieces:
        if out and tok.count(out[-1][0], end) <= budget and start >= out[-1][1]:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out
