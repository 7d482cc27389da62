"""Chunking: token-exact windows, structure, window guarantee, offsets, aggregation, truncation warning, bench."""

from __future__ import annotations

import itertools
import json
import warnings

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from domainfit.cli import app
from domainfit.config import load_config
from domainfit.core.errors import InputError, UsageError
from domainfit.core.types import Document
from domainfit.data.beir import write_beir
from domainfit.data.chunking import (
    Chunker,
    TruncationReport,
    TruncationWarning,
    check_truncation,
    model_window,
    token_offsets,
)
from domainfit.data.config import ChunkingConfig
from domainfit.data.longdocs import build_long_corpus
from domainfit.data.structure import find_sections
from domainfit.evaluation.chunk_bench import resolve_method, sweep_grid
from domainfit.retrieval.chunked import aggregate_chunks, top_documents

runner = CliRunner()

PROSE = " ".join(
    f"Sentence number {i} talks about the calibration of valve {i * 7 % 13} and pressure readings." for i in range(60)
)

STRUCTURED = (
    "Intro text before any heading. It explains the purpose.\n\n"
    "# Installation\n\n"
    "Install the package with pip. Then run the setup command once.\n\n"
    "## Linux\n\n"
    + "On Linux use the system package manager. "
    * 40
    + "\n\n```python\n# not a heading, a comment\nprint('hi')\n```\n\n"
    "Configuration\n=============\n\n"
    "Set the value in the file.\n\n"
    "Advanced\n--------\n\n"
    + ("A_really_long_identifier_without_spaces_" * 30)
    + "\n\n<h2>HTML &amp; more</h2><p>First paragraph.</p><p>"
    + "word " * 300
    + "</p>\n\n"
    + "没有空格的中文句子。" * 60
)


def tokens_of(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def test_fixed_windows_are_exact_in_tokens(minilm):
    tokenizer = minilm.tokenizer
    doc = Document("d1", PROSE, title="Ignored title")
    chunker = Chunker(tokenizer, 254, method="fixed", size=50, overlap=12, prefix_title=False, prefix_heading=False)
    chunks = chunker.chunk(doc)
    offsets = token_offsets(tokenizer, [PROSE])[0]
    n = len(offsets)
    step = 50 - 12
    assert len(chunks) == 1 + -(-(n - 50) // step)
    for k, chunk in enumerate(chunks):
        first, last = k * step, min(k * step + 50, n)
        assert (chunk.token_start, chunk.token_end) == (first, last)
        assert (chunk.start, chunk.end) == (offsets[first][0], offsets[last - 1][1])
        assert chunk.n_tokens == (50 if k < len(chunks) - 1 else n - first)
        assert chunk.prefix == "" and chunk.doc_id == "d1" and chunk.id == f"d1#{k}"
    for a, b in itertools.pairwise(chunks):
        assert a.token_end - b.token_start == 12  # overlap exact in tokens
    assert chunks[-1].token_end == n  # nothing left out
    # a chunk that starts and ends at whole words re-tokenises to exactly its window
    assert tokens_of(tokenizer, chunks[0].text) == 50


@pytest.mark.parametrize("method", ["fixed", "structural", "recursive"])
def test_chunks_round_trip_to_their_document(minilm, method):
    doc = Document("doc-7", STRUCTURED, title="Manual")
    chunks = Chunker.for_model(minilm, ChunkingConfig(method=method, size=64, overlap=8)).chunk(doc)
    assert len(chunks) > 3
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)
    for chunk in chunks:
        assert chunk.doc_id == "doc-7"
        assert chunk.text == STRUCTURED[chunk.start : chunk.end]
        assert chunk.encode_text() == chunk.prefix + chunk.text
    starts = [c.start for c in chunks]
    assert starts == sorted(starts)


@pytest.mark.parametrize("method", ["fixed", "recursive"])
def test_every_character_is_in_some_chunk(minilm, method):
    doc = Document("d", STRUCTURED)
    cfg = ChunkingConfig(method=method, size=48, overlap=0, prefix_heading=False, prefix_title=False)
    chunks = Chunker.for_model(minilm, cfg).chunk(doc)
    covered = [False] * len(STRUCTURED)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    missing = [i for i, ch in enumerate(STRUCTURED) if not ch.isspace() and not covered[i]]
    assert missing == []


@pytest.mark.parametrize("size", [16, 40, None])
def test_recursive_never_exceeds_the_window(minilm, size):
    tokenizer = minilm.tokenizer
    window = 40
    chunker = Chunker(tokenizer, window, method="recursive", size=size, overlap=min(8, (size or window) - 1))
    doc = Document("d", STRUCTURED, title="A fairly long document title that takes a share of every chunk window")
    chunks = chunker.chunk(doc)
    assert len(chunks) > 10
    worst = max(tokens_of(tokenizer, c.encode_text()) for c in chunks)
    assert worst <= window
    assert all(c.prefix.startswith("A fairly long") for c in chunks)


def test_recursive_fits_the_model_window_with_prompts_and_specials(minilm):
    window = model_window(minilm)
    assert window == minilm.max_seq_length - 2  # [CLS] and [SEP]
    doc = Document("d", STRUCTURED * 3, title="Manual")
    chunks = Chunker.for_model(minilm, ChunkingConfig(method="recursive")).chunk(doc)
    lengths = [len(minilm.tokenizer(c.encode_text(), verbose=False)["input_ids"]) for c in chunks]
    assert max(lengths) <= minilm.max_seq_length


def test_sections_of_markdown_rest_and_html():
    sections = find_sections(STRUCTURED)
    paths = [s.path for s in sections]
    assert paths[0] == ()  # the intro before the first heading
    assert ("Installation",) in paths and ("Installation", "Linux") in paths
    assert ("Configuration",) in paths and ("Configuration", "Advanced") in paths
    assert ("Configuration", "HTML & more") in paths  # <h2> is a sibling of the "-" underlined level 2
    assert not any("not a heading" in " ".join(p) for p in paths)  # comment in a code fence
    # sections tile the text from the first heading on
    for a, b in itertools.pairwise(sections):
        assert a.end == b.start


def test_structural_chunks_follow_sections_and_carry_headings(minilm):
    doc = Document("d", STRUCTURED, title="Manual")
    chunks = Chunker.for_model(minilm, ChunkingConfig(method="structural", size=200)).chunk(doc)
    linux = [c for c in chunks if c.heading == "Installation > Linux"]
    assert linux and all(c.prefix == "Manual\nInstallation > Linux\n" for c in linux)
    assert all("# Installation" not in c.text for c in chunks)  # the heading line is in the prefix instead
    sections = find_sections(STRUCTURED)
    for chunk in chunks:  # no chunk crosses a section boundary
        assert any(s.start <= chunk.start and chunk.end <= s.end for s in sections)


def test_prefixes_can_be_turned_off(minilm):
    doc = Document("d", STRUCTURED, title="Manual")
    cfg = ChunkingConfig(method="recursive", prefix_title=False, prefix_heading=False)
    assert all(c.prefix == "" for c in Chunker.for_model(minilm, cfg).chunk(doc))


def test_blank_document_keeps_one_chunk_for_its_title(minilm):
    chunks = Chunker.for_model(minilm, ChunkingConfig(method="recursive")).chunk(Document("d", "   ", title="Only"))
    assert len(chunks) == 1 and chunks[0].text == "" and chunks[0].encode_text() == "Only\n"


def test_aggregation_ranks_documents_on_a_hand_made_case():
    hits = [("a", 0.90), ("b", 0.80), ("c", 0.50), ("b", 0.85), ("c", 0.50), ("c", 0.50), ("d", 0.10)]
    best = aggregate_chunks(hits, "max")
    assert best == {"a": 0.90, "b": 0.85, "c": 0.50, "d": 0.10}
    assert list(top_documents(best, 3)) == ["a", "b", "c"]
    summed = aggregate_chunks(hits, "sum-top-n", top_n=2)
    assert summed == pytest.approx({"a": 0.90, "b": 1.65, "c": 1.00, "d": 0.10})
    assert list(top_documents(summed, 10)) == ["b", "c", "a", "d"]
    three = aggregate_chunks(hits, "sum-top-n", top_n=3)
    assert list(top_documents(three, 2)) == ["b", "c"]  # c: 1.5 < b: 1.65
    # equal scores: trec_eval order (document id descending)
    assert list(top_documents({"x1": 0.5, "x2": 0.5}, 2)) == ["x2", "x1"]
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate_chunks(hits, "mean")  # type: ignore[arg-type]


def test_bad_settings_are_clear_errors(minilm, tmp_path):
    with pytest.raises(ValidationError, match=r"overlap \(64\) must be smaller than size \(64\)"):
        ChunkingConfig(size=64, overlap=64)
    path = tmp_path / "domainfit.toml"
    path.write_text('[chunking]\nmethod = "recursive"\nsize = 50\noverlap = 80\n')
    with pytest.raises(InputError, match="overlap"):
        load_config(path)
    path.write_text('[chunking]\nmethod = "paragraphs"\n')
    with pytest.raises(InputError) as err:
        load_config(path)
    assert err.value.line == 2 and err.value.field == "chunking.method"
    with pytest.raises(UsageError, match="exceeds the model window of 254"):
        Chunker.for_model(minilm, ChunkingConfig(method="fixed", size=300))
    with pytest.raises(UsageError, match="overlap"):
        Chunker(minilm.tokenizer, 254, method="fixed", size=None, overlap=254)
    with pytest.raises(UsageError, match="not a chunker"):
        Chunker(minilm.tokenizer, 254, method="auto")
    result = runner.invoke(app, ["bench", str(tmp_path), "--chunking", "sentences", "--quiet"])
    assert result.exit_code == 2 and "chunking.method" in result.output


def test_truncation_warns_once_with_counts(minilm):
    texts = ["short text"] * 2 + [PROSE] * 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = check_truncation(minilm, texts, "test documents", "MiniLM")
        again = check_truncation(minilm, texts, "test documents", "MiniLM")
    assert report == again
    assert (report.n_texts, report.n_over, report.max_seq_length) == (5, 3, 256)
    assert report.longest > 256 and 0 < report.tokens_dropped < report.tokens_total
    messages = [str(w.message) for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(messages) == 1 and messages[0].startswith("3 of 5 test documents exceed the 256-token window of MiniLM")
    quiet = check_truncation(minilm, ["short"], "test documents", "MiniLM")
    assert quiet.n_over == 0


def test_auto_method_and_sweep_grid():
    over = TruncationReport("documents", 10, 2, 256, 900, 4000, 900)
    fits = TruncationReport("documents", 10, 0, 256, 200, 1000, 0)
    assert resolve_method("auto", over) == "recursive" and resolve_method("auto", fits) == "none"
    assert resolve_method("fixed", fits) == "fixed"
    grid, notes = sweep_grid(ChunkingConfig(sweep_sizes=[64, 128, 512], sweep_overlaps=[0, 64], overlap=16), 254)
    assert grid == [(64, 0), (64, 16), (128, 0), (128, 16), (128, 64), (254, 0), (254, 16), (254, 64)]
    assert notes == ["sweep size 512 skipped: above the 254-token window"]
    assert sweep_grid(ChunkingConfig(sweep=False, size=100, overlap=10), 254) == ([(100, 10)], [])


def test_bench_on_long_documents_chunked_beats_unchunked(tmp_path):
    data = write_beir(build_long_corpus(n_docs=12, sections=3, sentences_per_section=12, seed=3), tmp_path / "long")
    config = tmp_path / "domainfit.toml"
    config.write_text(
        '[bench]\nhybrid = false\n[chunking]\nmethod = "auto"\noverlap = 0\nsweep_sizes = [128]\nsweep_overlaps = [0]\n'
    )
    ws = tmp_path / "ws"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, ["bench", str(data), "--workspace", str(ws), "--config", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    assert any(issubclass(w.category, TruncationWarning) and "12 of 12 documents" in str(w.message) for w in caught)
    metrics = json.loads((ws / "bench" / "metrics.json").read_text())
    scores = {s["name"]: s["metrics"]["ndcg@10"] for s in metrics["systems"]}
    print(f"\nlong-document corpus, ndcg@10: {scores}")
    assert scores["dense-chunked"] >= scores["dense"] + 0.4
    assert scores["dense-chunked"] >= 0.8
    chunking = metrics["chunking"]["all-MiniLM-L6-v2"]
    assert chunking["resolved_method"] == "recursive" and chunking["truncation"]["n_over"] == 12
    sweep = chunking["sweep"]
    assert [(p["size"], p["overlap"]) for p in sweep] == [(128, 0), (254, 0)]
    assert sum(p["best"] for p in sweep) == 1 and sum(p["main"] for p in sweep) == 1
    best = next(p for p in sweep if p["best"])
    assert best["metrics"]["ndcg@10"] == max(p["metrics"]["ndcg@10"] for p in sweep)
    assert sweep[0]["n_chunks"] > sweep[1]["n_chunks"] >= 12
    system = next(s for s in metrics["systems"] if s["name"] == "dense-chunked")
    assert system["config"]["chunking"]["method"] == "recursive" and system["config"]["chunking"]["window"] == 254
    # the settings are recorded in every artifact
    assert json.loads((ws / "bench" / "config.json").read_text())["chunking"]["method"] == "auto"
    assert json.loads((ws / "bench" / "manifest.json").read_text())["inputs"]["chunking"]["sweep_sizes"] == [128]
    summary = (ws / "bench" / "summary.md").read_text()
    assert "## Chunking" in summary and "**best**" in summary and "| dense-chunked |" in summary
    assert "Chunking (all-MiniLM-L6-v2" in result.output and "(best)" in result.output
    assert "12 of 12 documents exceed the 256-token window" in result.output
