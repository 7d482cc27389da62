"""Unicode normalisation: the rules, idempotence, and the same treatment at load, index and query time."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from domainfit.config import load_config
from domainfit.core.errors import InputError
from domainfit.core.types import Document, Query
from domainfit.data.beir import BeirDataset, load_beir, write_beir
from domainfit.data.pairs import read_pairs
from domainfit.data.splits import normalise_text
from domainfit.retrieval.dense import DenseRetriever, encode_texts
from domainfit.retrieval.lexical import BM25Retriever
from domainfit.synth.base import SyntheticQuery
from domainfit.text.config import TextConfig, prepare_text
from domainfit.text.model_text import (
    MODEL_TEXT_FILE,
    model_normalization,
    normalization_mismatch,
    write_model_text_settings,
)
from domainfit.text.normalize import (
    _LINE_BREAKS,
    _REMOVED,
    _SPACING_DIACRITICS,
    NORMALIZATION_VERSION,
    normalization_id,
    normalize_text,
)
from domainfit.train.data import Example

CASES = {
    # full-width and half-width forms
    "ＡＰＩ　ｋｅｙ　１２３": "API key 123",
    "ＥＲＲ＿ＡＵＴＨ＿７０２": "ERR_AUTH_702",
    "ｶﾀｶﾅ": "カタカナ",
    # compatibility spaces, ligatures, superscripts, circled digits
    "no\u00a0break\u202fthin\u2009space": "no break thin space",
    "ﬁle ﬂow": "file flow",
    "x² ①": "x2 1",
    # accents compose; spacing diacritics stay as they are
    "Cafe\u0301": "Café",
    "´timeout´ ¨ ¸": "´timeout´ ¨ ¸",
    # control characters and invisible format characters are removed
    "pass\x00word\x07": "password",
    "\x1b[31mred\x1b[0m": "[31mred[0m",
    "C1\x80\x9fcontrol": "C1control",
    "zero\u200bwidth\ufeff soft\u00adhyphen": "zerowidth softhyphen",
    "bidi\u200e\u202amarks\u202c\u2066": "bidimarks",
    # zero-width joiners are kept (Persian, Indic, emoji sequences)
    "می\u200cخواهم": "می\u200cخواهم",
    # line breaks
    "a\r\nb\rc": "a\nb\nc",
    "a\x0bb\x0cc\x85d\u2028e": "a\nb\nc\nd\ne",
    "para one\u2029para two": "para one\n\npara two",
    # whitespace: ends stripped, inner spaces, tabs and blank lines kept
    "  \t padded \n ": "padded",
    "keep  two\tspaces\n\nand blank lines": "keep  two\tspaces\n\nand blank lines",
    "def f():\n    return 1": "def f():\n    return 1",
    "\u3000全角スペース\u3000": "全角スペース",
    # lone surrogates become the replacement character
    "bad\ud800surrogate": "bad\ufffdsurrogate",
    "": "",
    "plain ASCII stays": "plain ASCII stays",
}


@pytest.mark.parametrize(("raw", "expected"), list(CASES.items()))
def test_normalize_rules(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize("raw", list(CASES) + list(CASES.values()))
def test_normalize_is_idempotent_on_the_cases(raw: str) -> None:
    once = normalize_text(raw)
    assert normalize_text(once) == once


TRICKY = [
    "e\x00\u0301",  # removing the control character must not leave an uncomposed accent
    "\u0301\u0301a",
    " \u0301x",
    "´\u0301",
    "a´\u0301b",
    "\u2029\u2029",
    "\x00 \x00",
    "\u3000\u0301",
    "ﾞ",  # half-width voiced sound mark
    "ｶﾞ",  # half-width katakana + voiced mark compose
    "\ufb2c",
    "\u1e9b\u0323",
    "Å Å Å",
    "\u0344\u0385",
    "한국어 한",
]


@pytest.mark.parametrize("raw", TRICKY)
def test_normalize_is_idempotent_on_tricky_sequences(raw: str) -> None:
    once = normalize_text(raw)
    assert normalize_text(once) == once


def test_normalize_is_idempotent_property() -> None:
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    interesting = st.sampled_from(
        sorted(_SPACING_DIACRITICS)
        + list("\x00\x07\x0b\x0c\r\n\t \u0085\u00a0\u00ad\u200b\u200c\u200d\u2028\u2029\u3000\ufeff")
        + ["\u0301", "\u0323", "\u3099", "ﾞ", "ｶ", "Ａ", "ﬁ", "②", "e", "A", "한", "ᄒ", "ᅡ"]
    )
    text = st.lists(st.one_of(st.characters(), interesting), max_size=30).map("".join)

    @hypothesis.settings(max_examples=600, deadline=None, derandomize=True)
    @hypothesis.given(text)
    def check(raw: str) -> None:
        once = normalize_text(raw)
        assert normalize_text(once) == once
        assert _REMOVED.search(once) is None and "\r" not in once
        assert once == once.strip()

    check()


def test_nfkc_output_never_needs_a_second_pass() -> None:
    """The removed characters and line breaks never come out of NFKC, and the kept diacritics are exactly the
    characters whose NFKC form is a space plus combining marks (so the list is right for this Python)."""
    spacing = set()
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        char = chr(cp)
        nfkc = unicodedata.normalize("NFKC", char)
        if nfkc == char:
            continue
        assert _REMOVED.search(nfkc) is None and _LINE_BREAKS.search(nfkc) is None, hex(cp)
        if len(nfkc) > 1 and nfkc[0] == " " and all(unicodedata.combining(c) for c in nfkc[1:]):
            spacing.add(char)
    assert spacing == set(_SPACING_DIACRITICS)


def test_ascii_fast_path_returns_the_same_object() -> None:
    text = "Return list of tuples containing normalised cookie information."
    assert normalize_text(text) is text


def test_demo_corpus_is_unchanged_by_normalisation() -> None:
    """The bundled demo (plain English docstrings) is already normal: its results cannot change."""
    from domainfit.data.demo import demo_path

    root = Path(demo_path())
    for name, fields in (("corpus.jsonl", ("title", "text")), ("queries.jsonl", ("text",))):
        for line in (root / name).read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            for key in fields:
                if key in record:
                    assert normalize_text(record[key]) == record[key], record["_id"]


def test_normalization_id_names_the_rules() -> None:
    assert normalization_id(True) == f"nfkc-v{NORMALIZATION_VERSION}+unicode-{unicodedata.unidata_version}"
    assert normalization_id(False) == "off"


def test_matching_key_builds_on_the_normalisation() -> None:
    assert normalise_text("Ｘ－ｒａｙ") == normalise_text("x-ray") == "x ray"


# -- the points where text enters ---------------------------------------------------------------


def _dataset() -> BeirDataset:
    corpus = {
        "d1": Document(
            "d1", "Ｌｏｇｉｎ fails with ＥＲＲ＿ＡＵＴＨ＿７０２\x00 after the token expired.", "Ａｕｔｈ\u00a0errors"
        ),
        "d2": Document("d2", "Invoices can be downloaded as PDF files from the billing page."),
    }
    queries = {"q1": Query("q1", "  ＥＲＲ＿ＡＵＴＨ＿７０２\u200b  ", {"family": "auth"})}
    return BeirDataset(corpus=corpus, queries=queries, qrels={"test": {"q1": {"d1": 1}}})


def test_beir_loader_normalises_documents_and_queries(tmp_path: Path) -> None:
    folder = write_beir(_dataset(), tmp_path / "data")
    loaded = load_beir(folder)
    assert loaded.corpus["d1"].text == "Login fails with ERR_AUTH_702 after the token expired."
    assert loaded.corpus["d1"].title == "Auth errors"
    assert loaded.queries["q1"].text == "ERR_AUTH_702"
    assert loaded.queries["q1"].metadata == {"family": "auth"}


def test_query_of_only_control_characters_is_bad_input(tmp_path: Path) -> None:
    folder = write_beir(_dataset(), tmp_path / "data")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "\\u0000\\u200b\\u0007"}\n', encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_beir(folder)
    assert err.value.line == 1 and err.value.field == "text"


def test_loader_keeps_raw_text_when_normalisation_is_off(tmp_path: Path) -> None:
    folder = write_beir(_dataset(), tmp_path / "data")
    config = load_config(None, {"text": {"normalize": False}})
    assert config.text.normalize is False
    assert load_beir(folder, text=config.text).queries["q1"].text == "  ＥＲＲ＿ＡＵＴＨ＿７０２\u200b  "
    assert load_beir(folder, text=load_config(None).text).queries["q1"].text == "ERR_AUTH_702"  # the defaults
    assert load_beir(folder).queries["q1"].text == "ERR_AUTH_702"  # a setting never outlives its call


def test_pair_files_training_examples_and_generated_queries_are_normalised(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        json.dumps({"query": "ｒｅｓｅｔ\u3000password", "positive": "Reset\r\nlinks", "negative": "x\x00y"}) + "\n",
        encoding="utf-8",
    )
    pair = read_pairs(pairs)[0]
    assert (pair.query, pair.positive, pair.negative) == ("reset password", "Reset\nlinks", "xy")
    example = Example("ＡＰＩ", "ﬁle\x00", ["ｂａｄ "])
    assert (example.anchor, example.positive, example.negatives) == ("API", "file", ["bad"])
    generated = SyntheticQuery(" ｗｈａｔ\u200b is ＳＳＯ ", "d1", "llm", positive_text="Ｓｉｎｇｌｅ sign-on")
    assert (generated.text, generated.positive_text) == ("what is SSO", "Single sign-on")


def test_prepare_text_follows_the_setting() -> None:
    assert prepare_text("ＡＰＩ") == "API"
    assert prepare_text("ＡＰＩ", TextConfig(normalize=False)) == "ＡＰＩ"
    assert prepare_text("ＡＰＩ") == "API"


def test_text_section_of_the_config(tmp_path: Path) -> None:
    path = tmp_path / "domainfit.toml"
    path.write_text('[text]\nnormalize = true\nlanguage_slices = "on"\nlanguages = ["fr", "en", "de"]\n')
    config = load_config(path)
    assert config.text.languages == ["de", "en", "fr"] and config.text.language_slices == "on"
    path.write_text('[text]\nlanguages = ["English"]\n')
    with pytest.raises(InputError) as err:
        load_config(path)
    assert err.value.line == 2 and err.value.field == "text.languages"


# -- identical at index time and query time, through the real retrievers ------------------------

DOCS = {
    "d1": Document("d1", "Login fails with ERR_AUTH_702 when the session token has expired.", "Auth errors"),
    "d2": Document("d2", "Invoices can be downloaded as PDF files from the billing history page.", "Invoices"),
    "d3": Document("d3", "Open TCP port 443 in the firewall to allow HTTPS traffic.", "Firewall"),
}
ASCII_QUERY = "ERR_AUTH_702 session token"
FULL_WIDTH_QUERY = "ＥＲＲ＿ＡＵＴＨ＿７０２\u3000ｓｅｓｓｉｏｎ\u00a0ｔｏｋｅｎ\x00"


def test_bm25_full_width_query_scores_exactly_like_the_ascii_query() -> None:
    bm25 = BM25Retriever()
    bm25.index(DOCS)
    run = bm25.search({"ascii": ASCII_QUERY, "wide": FULL_WIDTH_QUERY}, k=3)
    assert next(iter(run["wide"])) == "d1"
    assert run["wide"] == run["ascii"]
    assert np.array_equal(bm25.score_all(FULL_WIDTH_QUERY), bm25.score_all(ASCII_QUERY))


def test_bm25_full_width_document_is_found_by_an_ascii_query() -> None:
    wide = {did: Document(did, doc.text.translate(_WIDEN), doc.title) for did, doc in DOCS.items()}
    plain, widened = BM25Retriever(), BM25Retriever()
    plain.index(DOCS)
    widened.index(wide)
    assert widened.search({"q": ASCII_QUERY}, k=3) == plain.search({"q": ASCII_QUERY}, k=3)


_WIDEN = {c: c + 0xFEE0 for c in range(0x21, 0x7F)}  # ASCII -> full-width forms


def test_dense_full_width_query_embeds_exactly_like_the_ascii_query(minilm, tmp_path: Path) -> None:
    vectors = encode_texts(minilm, [ASCII_QUERY, FULL_WIDTH_QUERY, ASCII_QUERY.translate(_WIDEN)])
    assert np.array_equal(vectors[0], vectors[1]) and np.array_equal(vectors[0], vectors[2])
    dense = DenseRetriever(minilm, cache_dir=tmp_path / "cache")
    dense.index(DOCS)
    run = dense.search({"ascii": ASCII_QUERY, "wide": FULL_WIDTH_QUERY}, k=3)
    assert next(iter(run["wide"])) == "d1"
    assert run["wide"] == run["ascii"]
    assert dense.get_config_dict()["text_normalization"] == normalization_id(True)


def test_model_folder_records_its_normalisation(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    assert model_normalization(folder) is None and normalization_mismatch(folder, TextConfig()) is None
    write_model_text_settings(folder, TextConfig())
    assert json.loads((folder / MODEL_TEXT_FILE).read_text())["text_normalization"] == normalization_id(True)
    assert normalization_mismatch(folder, TextConfig()) is None
    assert "trained on text normalised as" in (normalization_mismatch(folder, TextConfig(normalize=False)) or "")
