"""Hard-negative mining: exclusions, false-negative filters, sources, parity with sentence-transformers."""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import build_mini_dataset
from domainfit.core.types import Document
from domainfit.mine.negatives import MiningSettings, NegativeMiner
from domainfit.retrieval.dense import DenseRetriever
from domainfit.synth.datasets import TrainingPair, excluded_documents, labelled_pairs


@pytest.fixture(scope="module")
def encoder(minilm, tmp_path_factory):
    """The packaged MiniLM with an embedding cache, so each text is encoded once per module."""
    return DenseRetriever(minilm, cache_dir=tmp_path_factory.mktemp("embeddings"))


def _corpus(extra: dict[str, Document] | None = None) -> dict[str, Document]:
    corpus = dict(build_mini_dataset().corpus)
    corpus.update(extra or {})
    return corpus


def _miner(encoder, corpus: dict[str, Document], **settings) -> NegativeMiner:
    texts = [d.full_text() for d in corpus.values()]
    return NegativeMiner(list(corpus), texts, encoder.encode_documents(texts), encoder, MiningSettings(**settings))


def _pair(qid: str, query: str, doc_id: str, **kw) -> TrainingPair:
    return TrainingPair(query_id=qid, query=query, doc_id=doc_id, origin=kw.pop("origin", "labelled"), source="t", **kw)


def _all_pairs() -> list[TrainingPair]:
    """One pair per judged query of every split (20 queries), so exclusions are exercised widely."""
    ds = build_mini_dataset()
    return [
        _pair(qid, ds.queries[qid].text, doc) for qrels in ds.qrels.values() for qid, d in qrels.items() for doc in d
    ]


def test_negatives_never_include_labelled_positives_or_the_positive(encoder):
    """Property over seeds, windows, sampling and source mixes: no negative is excluded, all are distinct."""
    corpus = _corpus()
    ids = list(corpus)
    pairs = _all_pairs()
    rng = random.Random(0)
    checked = 0
    for trial in range(12):
        excluded = [frozenset(rng.sample(ids, rng.randint(0, 6))) for _ in pairs]
        sources = tuple(rng.sample(["dense", "bm25", "random"], rng.randint(1, 3)))
        lo = rng.randint(0, 4)
        settings = dict(
            sources=sources,
            negatives=rng.randint(1, 4),
            range_min=lo,
            range_max=lo + rng.randint(3, 25),
            sampling=rng.choice(["top", "random"]),
            seed=trial,
            query_batch=rng.randint(1, 8),
            relative_margin=rng.choice([None, 0.05]),
        )
        result = _miner(encoder, corpus, **settings).mine(pairs, excluded)
        assert len(result.examples) + len(result.dropped) == len(pairs)
        for example in result.examples:
            pair = pairs[example.pair]
            chosen = [n.doc_id for n in example.negatives]
            assert len(chosen) == settings["negatives"] == len(set(chosen))
            assert pair.doc_id not in chosen
            assert not set(chosen) & excluded[example.pair], (settings, chosen, excluded[example.pair])
            assert {n.source for n in example.negatives} <= set(sources)
            for negative in example.negatives:
                if negative.source in ("dense", "bm25"):
                    assert settings["range_min"] <= negative.rank < settings["range_max"]
            checked += 1
    assert checked > 100


def test_excluded_documents_cover_every_split_and_same_text_synthetic_queries():
    ds = build_mini_dataset()
    ds.qrels["train"]["q001"] = {"d001": 1, "d002": 2, "d003": 0}
    ds.qrels["dev"]["q001"] = {"d004": 1}  # the same query judged in another split
    pairs = labelled_pairs(ds, "train")
    synthetic = _pair("s1", "ERR_AUTH_702 token EXPIRED!", "d005", origin="synthetic")
    excluded = excluded_documents([*pairs, synthetic], ds)
    q001 = [e for p, e in zip(pairs, excluded[:-1], strict=True) if p.query_id == "q001"]
    assert [p.doc_id for p in pairs if p.query_id == "q001"] == ["d001", "d002"]  # grade 0 is not a pair
    assert all(e == {"d001", "d002", "d004"} for e in q001)
    assert excluded[-1] == {"d005", "d001", "d002", "d004"}  # matched by normalised text


def test_false_negative_filter_removes_an_injected_duplicate_of_the_positive(encoder):
    base = build_mini_dataset().corpus["d001"]
    dup = Document(id="zz-dup", title=base.title, text=base.text)
    corpus = _corpus({"zz-dup": dup})
    pair = _pair("q001", "ERR_AUTH_702 token expired", "d001")
    common = dict(sources=("dense",), negatives=3, range_min=0, range_max=10, sampling="top")

    unfiltered = _miner(encoder, corpus, relative_margin=None, drop_duplicates=False, **common).mine([pair], [()])
    assert unfiltered.examples[0].negatives[0].doc_id == "zz-dup"  # without the filter it is the top negative

    by_duplicate = _miner(encoder, corpus, **common).mine([pair], [()])
    assert "zz-dup" not in [n.doc_id for n in by_duplicate.examples[0].negatives]
    assert by_duplicate.stats["dense"].duplicate == 1

    by_margin = _miner(encoder, corpus, drop_duplicates=False, **common).mine([pair], [()])
    assert "zz-dup" not in [n.doc_id for n in by_margin.examples[0].negatives]
    assert by_margin.stats["dense"].margin_relative >= 1 and by_margin.stats["dense"].duplicate == 0

    by_absolute = _miner(encoder, corpus, drop_duplicates=False, relative_margin=None, absolute_margin=0.01, **common)
    result = by_absolute.mine([pair], [()])
    assert "zz-dup" not in [n.doc_id for n in result.examples[0].negatives]
    assert result.stats["dense"].margin_absolute >= 1


def test_duplicate_filter_ignores_case_and_punctuation(encoder):
    base = build_mini_dataset().corpus["d001"]
    shouted = Document(id="zz-loud", title=base.title.upper(), text=base.text.upper().replace(";", " -- "))
    corpus = _corpus({"zz-loud": shouted})
    pair = _pair("q001", "ERR_AUTH_702 token expired", "d001")
    miner = _miner(encoder, corpus, sources=("dense",), negatives=3, range_min=0, range_max=10, relative_margin=None)
    result = miner.mine([pair], [()])
    assert result.stats["dense"].duplicate == 1
    assert "zz-loud" not in [n.doc_id for n in result.examples[0].negatives]


@pytest.mark.parametrize(("absolute", "relative"), [(None, 0.5), (0.45, None), (0.6, 0.4)])
def test_margins_match_a_brute_force_computation(encoder, absolute, relative):
    """Kept and removed candidates are exactly those a brute-force pass over all scores finds."""
    corpus = _corpus()
    ids = list(corpus)
    pairs = _all_pairs()
    miner = _miner(
        encoder,
        corpus,
        sources=("dense",),
        negatives=2,
        range_min=0,
        range_max=len(ids),
        absolute_margin=absolute,
        relative_margin=relative,
        sampling="top",
    )
    result = miner.mine(pairs, [()] * len(pairs))
    queries = encoder.encode_queries([p.query for p in pairs])
    removed = 0
    expected = {}
    for i, pair in enumerate(pairs):
        sims = miner.doc_vectors @ queries[i]
        pos = sims[ids.index(pair.doc_id)]
        order = [int(j) for j in np.lexsort((np.arange(len(ids)), -sims)) if ids[j] != pair.doc_id]
        inside = [
            (absolute is not None and sims[j] + absolute > pos)
            or (relative is not None and sims[j] > pos - abs(pos) * relative)
            for j in order
        ]
        removed += sum(inside)
        kept = [ids[j] for j, bad in zip(order, inside, strict=True) if not bad]
        if len(kept) >= 2:
            expected[i] = kept[:2]
    stats = result.stats["dense"]
    assert removed > 0 and stats.margin_absolute + stats.margin_relative == removed
    assert {e.pair: [n.doc_id for n in e.negatives] for e in result.examples} == expected


def test_matches_sentence_transformers_mine_hard_negatives(encoder, minilm):
    """Dense source, range_min=0, top sampling: the same negatives as the reference implementation."""
    from datasets import Dataset
    from sentence_transformers.util import mine_hard_negatives

    ds = build_mini_dataset()
    corpus = ds.corpus
    pairs = labelled_pairs(ds, "train")
    texts = [d.full_text() for d in corpus.values()]
    reference = mine_hard_negatives(
        Dataset.from_dict(
            {"anchor": [p.query for p in pairs], "positive": [corpus[p.doc_id].full_text() for p in pairs]}
        ),
        minilm,
        corpus=texts,
        range_min=0,
        range_max=10,
        relative_margin=0.05,
        num_negatives=3,
        sampling_strategy="top",
        output_format="n-tuple",
        verbose=False,
    )
    expected = {row["anchor"]: [row[f"negative_{i}"] for i in (1, 2, 3)] for row in reference}
    miner = _miner(encoder, corpus, sources=("dense",), negatives=3, range_min=0, range_max=10, sampling="top")
    result = miner.mine(pairs, excluded_documents(pairs, ds))
    got = {pairs[e.pair].query: [corpus[n.doc_id].full_text() for n in e.negatives] for e in result.examples}
    assert len(expected) == len(pairs) and got == expected


def _flagged(text: str) -> bool:
    return "refund" in text.lower() or "invoice" in text.lower()


class _MarkerCrossEncoder:
    """A stand-in cross-encoder: passages about refunds or invoices score like the positive, others low."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, pairs, batch_size=32, show_progress_bar=False, convert_to_numpy=True):
        self.calls += 1
        return np.array([0.9 if _flagged(p) else 0.1 for _, p in pairs])


def test_cross_encoder_margin_removes_candidates_scored_like_the_positive(encoder):
    corpus = _corpus()
    texts = [d.full_text() for d in corpus.values()]
    settings = MiningSettings(sources=("dense",), negatives=3, range_min=0, range_max=29, sampling="top")
    cross = _MarkerCrossEncoder()
    miner = NegativeMiner(list(corpus), texts, encoder.encode_documents(texts), encoder, settings, cross_encoder=cross)
    pair = _pair("q005", "invoice pdf download", "d005")
    result = miner.mine([pair], [()])
    chosen = result.examples[0].negatives
    assert result.examples[0].positive_ce_score == pytest.approx(0.9)
    assert not any(_flagged(corpus[n.doc_id].full_text()) for n in chosen)
    assert all(n.ce_score == pytest.approx(0.1) for n in chosen)
    assert result.stats["dense"].cross_encoder >= 1  # billing documents rank near the top for this query
    assert result.cross_encoder_scored >= 4 and cross.calls >= 2
    plain = _miner(encoder, corpus, sources=("dense",), negatives=3, range_min=0, range_max=29, sampling="top")
    assert any(_flagged(corpus[n.doc_id].full_text()) for n in plain.mine([pair], [()]).examples[0].negatives)


def test_real_cross_encoder_scores_candidates(encoder, tiny_cross_encoder):
    from domainfit.core.models import load_cross_encoder

    corpus = _corpus()
    texts = [d.full_text() for d in corpus.values()]
    settings = MiningSettings(
        sources=("dense", "random"), negatives=2, range_min=0, range_max=10, ce_relative_margin=None
    )
    cross = load_cross_encoder(str(tiny_cross_encoder))
    miner = NegativeMiner(list(corpus), texts, encoder.encode_documents(texts), encoder, settings, cross_encoder=cross)
    result = miner.mine(_all_pairs()[:3], [()] * 3)
    assert len(result.examples) == 3
    assert all(isinstance(n.ce_score, float) for e in result.examples for n in e.negatives)


def test_per_source_counts_click_negatives_and_backfill(encoder):
    corpus = _corpus()
    clicked = _pair("s1", "invoice pdf download", "d005", origin="synthetic", click_negatives=("x001", "d005"))
    plain = _pair("q009", "bucket quota exceeded", "d009")
    miner = _miner(
        encoder,
        corpus,
        sources=("clicks", "bm25", "random"),
        negatives=4,
        per_source={"clicks": 1, "bm25": 1, "random": 2},
        range_min=0,
        range_max=29,
        relative_margin=None,
    )
    result = miner.mine([clicked, plain], [(), ()])
    first, second = result.examples
    assert [(n.source, n.doc_id if n.source != "random" else "-") for n in first.negatives] == [
        ("clicks", "x001"),
        ("bm25", "d008"),  # the only other document sharing a term ("invoices") with the query
        ("random", "-"),
        ("random", "-"),
    ]
    assert first.negatives[1].rank == 0 and first.negatives[1].source_score > 0
    assert result.stats["clicks"].labelled_skipped == 1  # d005, the positive, was among the clicks
    # no clicks and no BM25 match besides the positive: random makes up the shortfall
    assert [n.source for n in second.negatives] == ["random"] * 4
    assert result.stats["random"].backfilled == 2
    assert result.negatives_per_source() == {"clicks": 1, "bm25": 1, "random": 6}


def test_default_quotas_are_dealt_round_robin():
    assert MiningSettings(sources=("bm25", "dense", "random"), negatives=4).quotas() == {
        "dense": 2,
        "bm25": 1,
        "random": 1,
    }
    per_source = MiningSettings(
        sources=("clicks", "dense", "random"), negatives=4, per_source={"clicks": 3, "random": 1}
    )
    assert per_source.quotas() == {"clicks": 3, "dense": 0, "random": 1}
    assert per_source.quotas(absent=["clicks"]) == {"clicks": 0, "dense": 2, "random": 2}
    assert MiningSettings(sources=("clicks",), negatives=2).quotas(absent=["clicks"]) == {"clicks": 0}
    with pytest.raises(ValueError, match="sum to"):
        MiningSettings(sources=("dense",), negatives=3, per_source={"dense": 2})
    with pytest.raises(ValueError, match="range_min"):
        MiningSettings(range_min=5, range_max=5)


def test_results_do_not_depend_on_the_query_batch(encoder):
    corpus = _corpus()
    pairs = _all_pairs()
    runs = []
    for batch in (1, 7, 256):
        result = _miner(encoder, corpus, range_min=1, range_max=20, query_batch=batch).mine(pairs, [()] * len(pairs))
        runs.append([(e.pair, [(n.doc_id, n.source) for n in e.negatives]) for e in result.examples])
    assert runs[0] == runs[1] == runs[2]
    other_seed = _miner(encoder, corpus, range_min=1, range_max=20, seed=99).mine(pairs, [()] * len(pairs))
    assert [(e.pair, [(n.doc_id, n.source) for n in e.negatives]) for e in other_seed.examples] != runs[0]


def test_pairs_that_cannot_be_filled_are_dropped(encoder):
    corpus = _corpus()
    pair = _pair("q001", "ERR_AUTH_702 token expired", "d001")
    miner = _miner(encoder, corpus, sources=("dense",), negatives=5, range_min=25, range_max=40)
    result = miner.mine([pair], [()])
    assert result.examples == [] and result.dropped == [0]
