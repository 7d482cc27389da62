"""Recipe search: the grid, settings read from data, folds, the dev pool, and pilots pruned by successive halving."""

import json
import time

import pytest
from pydantic import ValidationError

from conftest import TINY_TRAIN, build_mini_dataset
from domainfit.core.types import Query
from domainfit.data.beir import load_beir
from domainfit.data.demo import demo_path
from domainfit.evaluation.metrics import evaluate
from domainfit.recipe.config import RecipeConfig
from domainfit.recipe.devpool import candidate_runs, dev_pool, pool_evaluator, pool_report, top_documents
from domainfit.recipe.foldpilot import CrossFoldPilot
from domainfit.recipe.folds import needs_folds, selection_folds, selection_setting
from domainfit.recipe.pilot import TrainingPilot, pilot_train_config
from domainfit.recipe.search import Pruned, evaluation_steps, run_search, rung_steps
from domainfit.recipe.settings import (
    choose_chunking,
    choose_negatives,
    choose_seq_length,
    choose_synthetic_shares,
    measure_token_lengths,
    percentile,
    text_cut,
)
from domainfit.recipe.space import Recipe, recipe_space
from domainfit.retrieval.dense import DenseRetriever
from domainfit.train.config import TrainConfig
from domainfit.train.data import Example, examples_from_qrels


@pytest.fixture(scope="module")
def one_thread():
    """Train and encode on one thread: on a shared 2-core machine two threads spin against other work."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- config and space


def test_config_always_tries_no_synthetic_pairs_and_checks_the_schedule():
    assert RecipeConfig(synthetic_shares=[0.5, 0.25]).synthetic_shares == [0.0, 0.25, 0.5]
    assert RecipeConfig(synthetic_shares=[]).synthetic_shares == [0.0]
    assert RecipeConfig().synthetic_shares is None  # read from the data
    with pytest.raises(ValidationError, match="min_rung_steps"):
        RecipeConfig(pilot_steps=10, min_rung_steps=10)
    with pytest.raises(ValidationError, match="learning rate must be > 0"):
        RecipeConfig(learning_rates=[2e-5, 0.0])
    with pytest.raises(ValidationError, match="unknown recipe loss"):
        RecipeConfig(losses=["mnrl", "triplet"])
    with pytest.raises(ValidationError, match=r"in \[0, 1\]"):
        RecipeConfig(synthetic_shares=[1.5])
    with pytest.raises(ValidationError, match="Extra inputs"):
        RecipeConfig(learning_rate=1e-5)


def test_space_order_and_what_the_data_allows():
    cfg = RecipeConfig(learning_rates=[2e-5, 1e-4], synthetic_shares=[0.25], losses=["mnrl", "margin-mse"])
    space = recipe_space(cfg, has_synthetic=True, has_teacher=True, negatives=[1, 3])
    names = [r.name for r in space]
    assert names[0] == "labelled_mnrl_neg1_lr2e-05"  # the plain reference recipe first
    assert names[: names.index(next(n for n in names if n.startswith("syn")))] == [
        "labelled_mnrl_neg1_lr2e-05",
        "labelled_mnrl_neg1_lr0.0001",
        "labelled_mnrl_neg3_lr2e-05",
        "labelled_mnrl_neg3_lr0.0001",
        "labelled_margin-mse_neg1_lr2e-05",  # margin-mse reads one negative: no neg3 twin
        "labelled_margin-mse_neg1_lr0.0001",
    ]
    assert len(space) == 12 and len(set(names)) == 12
    assert recipe_space(cfg, has_synthetic=True, has_teacher=True, negatives=[1, 3]) == space  # deterministic
    plain = recipe_space(cfg, has_synthetic=False, has_teacher=False, negatives=[1, 3])
    assert {r.synthetic_share for r in plain} == {0.0} and {r.loss for r in plain} == {"mnrl"}
    only_synth = recipe_space(cfg, has_synthetic=True, has_teacher=False, has_labelled=False)
    assert {r.synthetic_share for r in only_synth} == {1.0}
    with pytest.raises(ValueError, match="needs a teacher"):
        recipe_space(RecipeConfig(losses=["margin-mse"]), has_synthetic=False, has_teacher=False)
    with pytest.raises(ValueError, match="no training pairs"):
        recipe_space(cfg, has_synthetic=False, has_teacher=False, has_labelled=False)
    from_data = recipe_space(RecipeConfig(learning_rates=[2e-5]), has_synthetic=True, has_teacher=False, shares=[0.1])
    assert [r.synthetic_share for r in from_data] == [0.0, 0.1]
    chunked = recipe_space(
        RecipeConfig(learning_rates=[2e-5]), has_synthetic=False, has_teacher=False, try_chunking=True
    )
    assert [r.chunk for r in chunked] == [False, True] and chunked[1].name.endswith("_chunked")


def test_recipe_overrides_name_the_real_config_fields():
    from domainfit.data.config import ChunkingConfig
    from domainfit.mine.config import MineConfig

    labelled = Recipe("a", 2e-5, 0.0, "mnrl", 1)
    assert labelled.overrides() == {
        "train": {"learning_rate": 2e-5, "loss": "mnrl", "max_negatives": 1},
        "mine": {"synthetic": False},
    }
    mixed = Recipe("b", 1e-4, 0.25, "margin-mse", 1, chunk=True)
    every = Recipe("c", 1e-4, 1.0, "mnrl", 3)
    for recipe in (labelled, mixed, every):
        sections = recipe.overrides()
        TrainConfig(**sections["train"])
        MineConfig(**sections["mine"])
        ChunkingConfig(**sections.get("chunking", {}))
    assert mixed.overrides()["mine"] == {"synthetic": True, "synthetic_share": 0.25}
    assert every.overrides()["mine"]["synthetic_share"] is None  # every synthetic pair
    assert json.loads(json.dumps(mixed.to_json()))["overrides"]["chunking"] == {"method": "auto"}


# ----------------------------------------------------------------------------- settings


def test_sequence_length_covers_p90_within_both_windows():
    lengths = [40] * 50 + [90] * 40 + [300] * 10  # p90 = 90
    setting = choose_seq_length(lengths, model_window=512, eval_window=256)
    assert setting.name == "max_seq_length" and setting.value == 96 and "p90 90" in setting.reason
    assert choose_seq_length([10, 12], model_window=512, eval_window=None).value == 32
    capped = choose_seq_length([100] * 50 + [400] * 50, model_window=512, eval_window=256)
    assert capped.value == 256 and "p90" in capped.reason
    long = choose_seq_length([300, 400, 410, 500, 600], model_window=512, eval_window=256)
    assert long.value == 256 and "median positive is 410" in long.reason and "chunk" in long.reason
    assert choose_seq_length([], model_window=128, eval_window=256).value == 128
    assert percentile([5, 1, 3], 50) == 3 and percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9


def test_the_chosen_sequence_length_says_how_much_text_it_cuts():
    lengths = [40] * 50 + [90] * 40 + [300] * 10  # cut at 96: 10 texts, 10 x 204 of 8,600 tokens
    assert text_cut(lengths, 96) == (0.1, 2040 / 8600)
    assert text_cut([], 96) == (0.0, 0.0) and text_cut([10, 20], 32) == (0.0, 0.0)
    setting = choose_seq_length(lengths, model_window=512, eval_window=256)
    assert "at 96 tokens 10% of positives are cut, 23.7% of their tokens" in setting.reason


def test_token_lengths_measured_on_a_seeded_sample(minilm):
    texts = [f"word {'x ' * (i % 7)}" for i in range(2500)]
    first = measure_token_lengths(minilm, texts, seed=3)
    assert len(first) == 2000 and first == measure_token_lengths(minilm, texts, seed=3)
    assert measure_token_lengths(minilm, ["hello world"]) == [4]  # [CLS] hello world [SEP]
    assert measure_token_lengths(minilm, ["refund"], prompt="passage: ") > measure_token_lengths(minilm, ["refund"])


def test_chunking_negatives_and_synthetic_share_rules():
    assert choose_chunking([100] * 8 + [600] * 2, 512).value is True
    assert choose_chunking([100] * 19 + [600], 512).value is False
    assert choose_negatives(5000, available=4).value == [1]
    assert choose_negatives(300, available=4).value == [1, 3]
    assert choose_negatives(300, available=1).value == [1]
    assert choose_negatives(300, available=0).value == [0]
    assert choose_synthetic_shares(1571, 5100).value == [0.0, 0.1]  # the corpus: labelled pairs plentiful
    assert choose_synthetic_shares(500, 5000).value == [0.0, 0.25, 0.5]
    assert choose_synthetic_shares(40, 5000).value == [0.0, 0.5, 0.75]
    assert choose_synthetic_shares(40, 20).value == [0.0, 1.0]  # 20 synthetic pairs fill only a third
    assert choose_synthetic_shares(40, 0).value == [0.0]
    assert choose_synthetic_shares(0, 100).value == [1.0]
    assert all(s.reason for s in (choose_negatives(1, 1), choose_synthetic_shares(1, 1)))
    assert choose_negatives(300, 4).to_json()["name"] == "negatives"


# ----------------------------------------------------------------------------- folds


def _queries_with_families():
    queries = {f"q{i}": Query(f"q{i}", f"question {i}", {"family": f"fam{i // 3}"}) for i in range(12)}
    queries["s1"] = Query("s1", "shared one")  # no family: grouped with s2 by their shared document
    queries["s2"] = Query("s2", "shared two")
    qrels = {qid: {f"d{qid}": 1} for qid in queries}
    qrels["s1"] = qrels["s2"] = {"dshared": 1}
    return queries, qrels


def test_folds_keep_each_family_on_one_side():
    queries, qrels = _queries_with_families()
    folds = selection_folds(qrels, queries, n_folds=3, seed=7)
    assert len(folds) == 3
    held_all = [qid for _, held in folds for qid in held]
    assert sorted(held_all) == sorted(qrels)  # every query held out exactly once
    for train_part, held in folds:
        assert held and train_part and not set(train_part) & set(held)
        family = {qid: queries[qid].metadata.get("family", "shared") for qid in queries}
        assert not {family[q] for q in train_part} & {family[q] for q in held}
    assert folds == selection_folds(qrels, queries, n_folds=3, seed=7)
    assert len(selection_folds(qrels, queries, n_folds=50, seed=7)) == 5  # at most one fold per family
    with pytest.raises(ValueError, match="two query families"):
        selection_folds({"q0": qrels["q0"], "q1": qrels["q1"]}, queries, n_folds=2, seed=7)


def test_folds_on_the_mini_dataset_and_when_they_are_needed():
    dataset = build_mini_dataset()
    folds = selection_folds(dataset.qrels["train"], dataset.queries, n_folds=3, seed=13)
    assert len(folds) == 2  # two families in train: auth and billing
    assert {dataset.queries[q].metadata["family"] for q in folds[0][1]} != {
        dataset.queries[q].metadata["family"] for q in folds[1][1]
    }
    assert needs_folds(dataset.qrels["dev"], 30) and not needs_folds(dataset.qrels["dev"], 4)
    assert needs_folds(None, 1) and needs_folds({"q": {"d": 0}}, 1)
    assert selection_setting(None, 30, 3).value == "folds" and "no dev split" in selection_setting(None, 30, 3).reason
    assert "few-shot" in selection_setting(dataset.qrels["dev"], 30, 3).reason
    assert selection_setting(dataset.qrels["dev"], 4, 3).value == "dev"


# ----------------------------------------------------------------------------- dev pool


def test_pool_is_judged_docs_plus_each_runs_top_depth():
    qrels = {"q1": {"r1": 1, "n1": 0}, "q2": {"r2": 2}}
    bm25 = {"q1": {"a": 3.0, "b": 2.0, "c": 1.0}, "q2": {"c": 5.0}, "q9": {"z": 9.0}}
    dense = {"q1": {"b": 0.9, "d": 0.8, "e": 0.8, "f": 0.1}}
    pool = dev_pool(["r1", "n1", "r2", "a", "b", "c", "d", "e", "f", "z"], qrels, [bm25, dense], depth=2)
    assert pool == {"r1", "n1", "r2", "a", "b", "c", "d", "e"}  # ties at the cut kept; other queries ignored
    assert dev_pool(["r1"], qrels, [bm25], depth=2) == {"r1"}  # ids outside the corpus left out
    assert top_documents({}, 5) == set() and top_documents({"a": 1.0}, 0) == set()
    assert pool_report(0.60, 0.61, n_pool=100, n_corpus=1000) == {
        "full": 0.6, "pool": 0.61, "difference": 0.01, "n_pool": 100, "n_corpus": 1000,
    }  # fmt: skip


@pytest.mark.filterwarnings("ignore::domainfit.data.truncation.TruncationWarning")
def test_pool_keeps_the_base_dense_score_of_the_full_corpus(tmp_path, minilm, one_thread):
    """On real docstrings, base dense NDCG@10 over the pool (depth 10) equals the full corpus'."""
    dataset = load_beir(demo_path())
    qrels = dict(list(dataset.qrels["dev"].items())[::16])  # 14 queries of several dev families
    relevant = {d for rel in qrels.values() for d in rel}
    others = set([d for d in dataset.corpus if d not in relevant][::12])  # about 180 documents of every family
    corpus = {d: dataset.corpus[d] for d in dataset.corpus if d in relevant or d in others}
    texts = {q: dataset.queries[q].text for q in qrels}
    window = minilm.max_seq_length
    minilm.max_seq_length = 64
    try:
        bm25, dense_run = candidate_runs(corpus, texts, minilm, depth=10, cache_dir=tmp_path)
        pool = dev_pool(corpus, qrels, [bm25, dense_run], depth=10)
        assert relevant <= pool and len(pool) < len(corpus)
        on_pool = DenseRetriever(minilm, cache_dir=tmp_path)  # the same embeddings, read from the cache
        on_pool.index({d: corpus[d] for d in corpus if d in pool})
        full = evaluate(qrels, dense_run, ["ndcg@10"])["ndcg@10"]
        pooled = evaluate(qrels, on_pool.search(texts, k=10), ["ndcg@10"])["ndcg@10"]
        assert pooled == pytest.approx(full, abs=1e-9) and full < 0.95  # and dev is not trivially easy here
        assert pool_report(full, pooled)["difference"] == pytest.approx(0.0, abs=1e-9)
    finally:
        minilm.max_seq_length = window


def test_pool_evaluator_scores_the_pool_with_every_relevant_document(minilm):
    dataset = build_mini_dataset()
    dev = dataset.qrels["dev"]
    texts = {q: dataset.queries[q].text for q in dev}
    evaluator = pool_evaluator(dataset.corpus, texts, dev, pool={"x001", "d011"})
    assert set(evaluator.corpus_ids) == {"x001", *{d for rel in dev.values() for d in rel}}
    scores = evaluator(minilm)
    assert evaluator.primary_metric.endswith("ndcg@10") and 0 < scores[evaluator.primary_metric] <= 1
    with pytest.raises(ValueError, match="no dev query"):
        pool_evaluator(dataset.corpus, texts, {q: {"x001": 0} for q in dev})


# ----------------------------------------------------------------------------- search with a fake pilot


def _fake_pilot(quality, cfg, calls=None):
    """A pilot whose dev curve climbs linearly from 0.5 to ``quality[recipe.name]`` over the pilot."""

    def pilot(recipe, report):
        if calls is not None:
            calls.append(recipe.name)
        final = quality[recipe.name]
        if final is None:
            raise RuntimeError("out of memory")
        report(0, 0.5)
        for step in evaluation_steps(cfg):
            report(step, 0.5 + (final - 0.5) * step / cfg.pilot_steps)
        return final

    return pilot


def test_search_prunes_the_worse_recipe_and_picks_the_best():
    cfg = RecipeConfig(learning_rates=[2e-5, 5e-2, 1e-4], negatives=[1], pilot_steps=40, min_rung_steps=10)
    recipes = recipe_space(cfg, has_synthetic=False, has_teacher=False)
    quality = {"labelled_mnrl_neg1_lr2e-05": 0.6, "labelled_mnrl_neg1_lr0.05": 0.1, "labelled_mnrl_neg1_lr0.0001": 0.7}
    result = run_search(recipes, _fake_pilot(quality, cfg), cfg)
    states = {t.recipe.name: t.state for t in result.trials}
    assert states == {
        "labelled_mnrl_neg1_lr2e-05": "complete",  # the first trial is never pruned
        "labelled_mnrl_neg1_lr0.05": "pruned",
        "labelled_mnrl_neg1_lr0.0001": "complete",
    }
    bad = result.trials[1]
    assert bad.pruned_at == 10 and [s for s, _ in bad.curve] == [0, 10]  # stopped at the first rung
    assert [s for s, _ in result.trials[0].curve] == [0, 10, 30, 40] and rung_steps(cfg) == [10, 30]
    assert result.winner is result.trials[2] and result.winner.score == 0.7
    assert all(t.seconds >= 0 for t in result.trials) and result.trials[0].best_score == pytest.approx(0.6)
    dumped = json.loads(json.dumps(result.to_json()))
    assert dumped["winner"] == "labelled_mnrl_neg1_lr0.0001" and dumped["trials"][1]["state"] == "pruned"
    assert dumped["trials"][0]["curve"][0] == {"step": 0, "ndcg@10": 0.5}


def test_search_records_failures_skips_past_max_trials_and_breaks_ties_to_the_earlier():
    cfg = RecipeConfig(learning_rates=[1e-5, 2e-5, 3e-5, 4e-5], negatives=[1], pilot_steps=9, min_rung_steps=3,
                       max_trials=3)  # fmt: skip
    recipes = recipe_space(cfg, has_synthetic=False, has_teacher=False)
    quality = dict(zip([r.name for r in recipes], [0.6, None, 0.6, 0.9], strict=True))
    calls: list[str] = []
    result = run_search(recipes, _fake_pilot(quality, cfg, calls), cfg)
    assert [t.state for t in result.trials] == ["complete", "failed", "complete", "skipped"]
    assert "out of memory" in result.trials[1].error and len(calls) == 3
    assert result.winner is result.trials[0]  # tie with the third: the earlier (cheaper) recipe wins
    assert len(result.by_state("skipped")) == 1


def test_a_pilot_that_swallows_pruned_is_still_recorded_pruned():
    cfg = RecipeConfig(learning_rates=[1e-5, 2e-5], negatives=[1], pilot_steps=4, min_rung_steps=2)
    recipes = recipe_space(cfg, has_synthetic=False, has_teacher=False)

    def pilot(recipe, report):
        try:
            for step in evaluation_steps(cfg):
                report(step, 0.9 if recipe is recipes[0] else 0.1)
        except Pruned:
            pass
        return 1.0

    result = run_search(recipes, pilot, cfg)
    assert [t.state for t in result.trials] == ["complete", "pruned"] and result.winner is result.trials[0]


def test_cross_fold_pilot_reports_the_running_mean_and_prunes_in_the_first_fold():
    cfg = RecipeConfig(learning_rates=[1e-5, 2e-5], negatives=[1], pilot_steps=4, min_rung_steps=2)
    recipes = recipe_space(cfg, has_synthetic=False, has_teacher=False)
    runs: list[tuple[str, int]] = []

    def fold_pilot(fold, offset):
        def pilot(recipe, report):
            runs.append((recipe.name, fold))
            good = recipe is recipes[0]
            report(0, 0.5)
            for step in evaluation_steps(cfg):
                report(step, (0.8 if good else 0.2) + offset)
            return (0.8 if good else 0.2) + offset

        return pilot

    folded = CrossFoldPilot([fold_pilot(0, 0.0), fold_pilot(1, 0.1)], fold_steps=cfg.pilot_steps)
    result = run_search(recipes, folded, cfg)
    first, second = result.trials
    assert first.state == "complete" and first.score == pytest.approx(0.85)
    assert [s for s, _ in first.curve] == [0, 2, 4, 6, 8] and first.curve[-1][1] == pytest.approx(0.85)
    assert second.state == "pruned" and runs.count((second.recipe.name, 1)) == 0  # pruned before its second fold


# ----------------------------------------------------------------------------- acceptance: a real search


def test_real_recipe_search_prunes_the_recipe_that_is_worse_on_dev(tmp_path, one_thread):
    """Pilots train MiniLM on the mini BEIR folder; a destructive learning rate is pruned, a sane recipe wins."""
    dataset = build_mini_dataset()
    cfg = RecipeConfig(learning_rates=[5e-4, 5e-2, 2e-5], negatives=[0], pilot_steps=6, min_rung_steps=2)
    recipes = recipe_space(cfg, has_synthetic=False, has_teacher=False)
    examples = examples_from_qrels(dataset, "train")
    dev = dataset.qrels["dev"]
    evaluator = pool_evaluator(dataset.corpus, {q: dataset.queries[q].text for q in dev}, dev)
    train_cfg = TrainConfig(**TINY_TRAIN)
    pilot = TrainingPilot(train_cfg, lambda recipe: examples, evaluator, evaluation_steps(cfg), output_dir=tmp_path)
    start = time.perf_counter()
    result = run_search(recipes, pilot, cfg)
    elapsed = time.perf_counter() - start
    states = {t.recipe.learning_rate: t.state for t in result.trials}
    assert states[5e-2] == "pruned", result.to_json()
    assert result.winner is not None and result.winner.recipe.learning_rate in (5e-4, 2e-5)
    destroyed = next(t for t in result.trials if t.recipe.learning_rate == 5e-2)
    assert destroyed.curve[-1][1] < result.winner.score and destroyed.pruned_at == 2
    assert result.winner.curve[0] == (0, pilot.base_score()) and [s for s, _ in result.winner.curve] == [0, 2, 6]
    assert not any(tmp_path.rglob("checkpoint-*")) and not any(tmp_path.rglob("*.safetensors"))  # pilots save nothing
    assert elapsed < 120


def test_pilot_config_applies_the_recipe_and_pilot_budget():
    base = TrainConfig(**{**TINY_TRAIN, "early_stopping_patience": 3, "merge": True})
    cfg = pilot_train_config(base, Recipe("r", 1e-4, 0.0, "margin-mse", 1), steps=12)
    assert (cfg.learning_rate, cfg.loss, cfg.max_negatives, cfg.max_steps) == (1e-4, "margin-mse", 1, 12)
    assert cfg.early_stopping_patience is None and not cfg.merge and cfg.batch_size == TINY_TRAIN["batch_size"]


def test_pilot_without_teacher_fails_a_margin_recipe_and_the_search_goes_on(tmp_path, one_thread):
    dataset = build_mini_dataset()
    dev = dataset.qrels["dev"]
    evaluator = pool_evaluator(dataset.corpus, {q: dataset.queries[q].text for q in dev}, dev)
    examples = [
        Example(e.anchor, e.positive, ["Unrelated release note."]) for e in examples_from_qrels(dataset, "train")
    ]
    cfg = RecipeConfig(learning_rates=[5e-4], losses=["mnrl", "margin-mse"], negatives=[1], pilot_steps=2,
                       min_rung_steps=1)  # fmt: skip
    recipes = recipe_space(cfg, has_synthetic=False, has_teacher=True)
    pilot = TrainingPilot(TrainConfig(**TINY_TRAIN), lambda r: examples, evaluator, evaluation_steps(cfg))
    result = run_search(recipes, pilot, cfg)
    assert [t.state for t in result.trials] == ["complete", "failed"] and "no teacher" in result.trials[1].error
