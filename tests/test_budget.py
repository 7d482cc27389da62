"""The time budget: durations, the pilot schedule, fitting a plan into a budget, and estimate against actual."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domainfit.budget.duration import format_minutes, parse_duration
from domainfit.budget.estimate import Workload, estimate_stages
from domainfit.budget.fit import EVAL_QUERY_FLOOR, Schedule, fit_to_budget, with_schedule
from domainfit.budget.probe import Probe
from domainfit.config import Config
from domainfit.render.timings import timings_markdown
from domainfit.stages.plan import Plan, planned


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), ("45", 2700), (20, 1200), ("2h 5m", 7500)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "", "10x", "-5m", "0m", "m"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_run_budget_in_config() -> None:
    assert Config.model_validate({"run": {"budget": "30m"}}).run.budget_seconds() == 1800
    assert Config().run.budget_seconds() is None
    with pytest.raises(ValueError, match="not a duration"):
        Config.model_validate({"run": {"budget": "tomorrow"}})
    assert format_minutes(30) == "30 s" and format_minutes(150) == "2.5 min"


def test_schedule_expected_successive_halving() -> None:
    # rungs at 10 and 30 below 40 steps; the first pilot runs to the end, the second passes a rung with
    # probability 1/2, the third and later ones with about 1/3 (Optuna's promotion rule)
    schedule = Schedule(trials=3, pilot_steps=40, min_rung=10, factor=3)
    assert schedule.rungs() == [10, 30]
    steps, evals = schedule.expected()
    second = 10 + 20 / 2 + 10 / 4
    third = 10 + 20 / 3 + 10 / 9
    assert steps == pytest.approx(40 + second + third, abs=1)
    assert evals == pytest.approx(1 + 3 + (1 + 1 / 2 + 1 / 4) + (1 + 1 / 3 + 1 / 9), abs=1)
    assert Schedule(0, 40, 10, 3).expected() == (0, 0)
    assert Schedule(12, 40, 10, 3).expected()[0] < 12 * 40  # pruning saves steps on a large grid


def _probe(step: float = 3.0) -> Probe:
    return Probe(
        seconds_per_token=1e-4,
        seconds_per_query=0.01,
        seconds_per_token_long=1e-4,
        short_length=100,
        long_length=256,
        seconds_per_step=step,
        seconds_per_bm25_document=1e-4,
        seconds_per_bm25_query=1e-3,
        bm25_documents=2000,
        batch_size=32,
        window=256,
        train_window=128,
        model_load_seconds=1.0,
        basis="test",
    )


def _work(**kw: object) -> Workload:
    values: dict[str, object] = dict(
        documents=10_000, lengths=[200] * 100, queries={"train": 2000, "dev": 300, "test": 1000}, labelled=2000,
        synthetic=25_000, source_documents=10_000, general_texts=300, bench_models=1, window=256,
        train_window=128, train_steps=200, train_evaluations=5, eval_pool_documents=6000, pilot_pool_documents=2000,
        pilot_queries=100,
    )  # fmt: skip
    values.update(kw)
    return Workload(**values)  # type: ignore[arg-type]


def test_estimates_name_every_stage_with_parts() -> None:
    stages = estimate_stages(with_schedule(_work(), Schedule(3, 40, 10, 3)), _probe())
    names = [s.stage for s in stages]
    loop = ["bench", "decide", "synth", "mine", "recipe", "train", "eval", "decide", "compress", "index", "report"]
    assert names == loop
    train = next(s for s in stages if s.stage == "train")
    assert train.parts["steps"] == pytest.approx(200 * 3.0)
    assert all(s.seconds == pytest.approx(sum(s.parts.values()), abs=0.5) for s in stages)


def test_no_budget_keeps_the_workload() -> None:
    fitted = fit_to_budget(_work(), _probe(), Schedule(6, 40, 10, 3), eval_steps=50, budget_seconds=None)
    assert fitted.fits and not fitted.changes
    assert fitted.workload.synthetic == 25_000 and fitted.schedule.trials == 6


def test_budget_cuts_synthetic_then_pilots_then_steps() -> None:
    asked = fit_to_budget(_work(), _probe(), Schedule(6, 40, 10, 3), eval_steps=50, budget_seconds=None)
    # a budget a little under the full plan: cutting synthetic pairs alone is enough
    loose = fit_to_budget(_work(), _probe(), Schedule(6, 40, 10, 3), eval_steps=50, budget_seconds=asked.seconds - 60)
    assert loose.fits and loose.workload.synthetic == 2000  # what a 50% share of 2,000 labelled pairs uses
    assert loose.schedule.trials == 6 and loose.workload.train_steps == 200
    # a tight budget: fewer pilots and fewer steps too, and the estimate is inside the budget
    tight = fit_to_budget(_work(), _probe(), Schedule(6, 40, 10, 3), eval_steps=50, budget_seconds=1500)
    assert tight.fits and tight.seconds <= 1500
    assert tight.schedule.trials < 6 or tight.workload.train_steps < 200
    assert tight.changes and any("synthetic" in c for c in tight.changes)


def test_large_dev_pool_costs_evaluations_before_steps() -> None:
    """On a large corpus the full run's evaluations go to two, then score fewer dev queries, before steps go."""
    work = _work(
        documents=45_000, queries={"train": 4800, "dev": 800, "test": 2400}, eval_pool_documents=16_000,
        eval_queries=800, eval_pool_per_query=20.0, train_steps=150, train_evaluations=4, synthetic=0,
    )  # fmt: skip
    asked = fit_to_budget(work, _probe(), Schedule(0, 40, 10, 3), eval_steps=50, budget_seconds=None)
    train = next(s for s in asked.stages if s.stage == "train")
    budget = asked.seconds - train.parts["evaluations"] * 0.8  # needs most of the evaluations' time back
    fitted = fit_to_budget(work, _probe(), Schedule(0, 40, 10, 3), eval_steps=50, budget_seconds=budget)
    assert fitted.fits and fitted.seconds <= budget
    assert fitted.workload.train_evaluations == 2 and fitted.eval_steps == 150
    assert EVAL_QUERY_FLOOR <= fitted.workload.eval_queries < 800
    assert fitted.workload.eval_pool_documents == pytest.approx(fitted.workload.eval_queries * 20.0, abs=1)
    assert fitted.workload.train_steps == 150  # no step was cut
    assert any("of 800 dev queries" in c for c in fitted.changes)
    # the full corpus as the dev pool: fewer queries would not make an evaluation cheaper, so steps go instead
    full = replace(work, eval_pool_documents=45_000, eval_pool_per_query=None)
    kept = fit_to_budget(full, _probe(), Schedule(0, 40, 10, 3), eval_steps=50, budget_seconds=budget)
    assert kept.workload.eval_queries == 800 and kept.workload.train_steps < 150


def test_dev_evaluator_samples_queries() -> None:
    """``max_queries`` keeps that many dev queries, the same ones for the same seed."""
    from domainfit.data.beir import load_beir
    from domainfit.data.demo import demo_path
    from domainfit.train.evaluator import dev_evaluator

    dataset = load_beir(demo_path())
    whole = dev_evaluator(dataset, "dev", corpus="sample")
    some = dev_evaluator(dataset, "dev", corpus="sample", max_queries=10, seed=3)
    again = dev_evaluator(dataset, "dev", corpus="sample", max_queries=10, seed=3)
    assert whole is not None and some is not None and again is not None
    assert len(some.queries_ids) == 10 < len(whole.queries_ids)
    assert some.queries_ids == again.queries_ids and set(some.queries_ids) <= set(whole.queries_ids)


def test_stages_done_are_counted_once() -> None:
    """After mine, what bench to mine took is in ``spent``; their estimates are not counted again."""
    asked = fit_to_budget(_work(), _probe(), Schedule(6, 40, 10, 3), eval_steps=50, budget_seconds=None)
    upto = {"bench", "decide", "synth", "mine"}
    spent = sum(s.seconds for s in asked.stages[:4] if s.stage in upto)
    again = fit_to_budget(_work(), _probe(), Schedule(6, 40, 10, 3), eval_steps=50, budget_seconds=asked.seconds,
                          spent=spent, done=("mine",), cut_synthetic=False)  # fmt: skip
    assert again.fits and not again.changes and again.seconds == pytest.approx(asked.seconds, abs=1)
    late = fit_to_budget(_work(), _probe(), Schedule(6, 40, 10, 3), eval_steps=50, budget_seconds=asked.seconds,
                         spent=spent + 300, done=("mine",), cut_synthetic=False)  # fmt: skip
    assert late.fits and late.changes and late.seconds <= asked.seconds  # 5 minutes late: the rest shrinks


def test_budget_too_small_does_not_fit() -> None:
    fitted = fit_to_budget(
        _work(), _probe(), Schedule(6, 40, 10, 3), eval_steps=50, budget_seconds=60, min_train_steps=20
    )
    assert not fitted.fits
    assert fitted.workload.train_steps == 20 and fitted.schedule.trials == 0


def test_planned_takes_each_stage_from_the_latest_phase() -> None:
    start = [{"stage": n, "seconds": 10.0, "parts": {}} for n in ("bench", "decide", "mine", "train", "decide")]
    later = [{"stage": "train", "seconds": 99.0, "parts": {}}, {"stage": "decide", "seconds": 2.0, "parts": {}}]
    common = dict(budget_seconds=None, spent_seconds=0.0, fits=True, changes=[], overrides={}, workload={}, probe={})
    first = Plan(seconds=50.0, stages=start, phase="start", **common)  # type: ignore[arg-type]
    plan = Plan(seconds=50.0, stages=later, phase="after mine", history=[first.to_json()], **common)  # type: ignore[arg-type]
    assert planned(plan) == [("bench", 10.0), ("decide", 10.0), ("mine", 10.0), ("train", 99.0), ("decide", 2.0)]


def test_timings_markdown_shows_estimate_and_actual() -> None:
    text = timings_markdown(
        {
            "budget_seconds": 600,
            "estimate_seconds": 500,
            "seconds": 540,
            "stages": [
                {"stage": "bench", "status": "ran", "seconds": 120, "estimate": 100, "ratio": 1.2},
                {"stage": "synth", "status": "up to date", "seconds": 0.1, "estimate": 30, "ratio": None},
            ],
        }
    )
    assert "| bench | ran | 1.7 min | 2.0 min | 1.20 |" in text
    assert "| synth | up to date | 30 s | 0 s | - |" in text
    assert "90% of it used" in text


def test_token_rate_grows_with_length() -> None:
    probe = replace(_probe(), seconds_per_token=1e-4, seconds_per_token_long=2e-4, short_length=100, long_length=200)
    assert probe.token_rate(100) == pytest.approx(1e-4) and probe.token_rate(200) == pytest.approx(2e-4)
    assert probe.token_rate(10) >= 0.5e-4  # extended below the short length, never under half its rate
    # 10 documents like a sample of one 100-token and one 300-token text cut at a 200-token window
    assert probe.document_seconds([100, 300], 10, window=200) == pytest.approx(10 * (100 * 1e-4 + 200 * 2e-4) / 2)


def test_make_plan_fits_a_budget_and_applies_it(tmp_path, mini_beir) -> None:
    from domainfit.core.errors import UsageError
    from domainfit.core.workspace import Workspace
    from domainfit.data.beir import load_beir
    from domainfit.stages.plan import make_plan, read_plan

    config = Config.model_validate(
        {
            "train": {"max_steps": 200, "batch_size": 4, "max_seq_length": 32, "eval_steps": 20},
            "recipe": {"learning_rates": [5e-4, 1e-4, 5e-5], "pilot_steps": 40, "min_rung_steps": 10},
            "mine": {"negatives": 1},
        }
    )
    dataset, ws = load_beir(mini_beir), Workspace(tmp_path / "ws")
    asked, _, probe = make_plan(dataset, config, ws, budget=None, spent=0.0, phase="start")
    assert asked.fits and not asked.changes and not asked.overrides
    assert [s["stage"] for s in asked.stages][:4] == ["bench", "decide", "synth", "mine"]
    assert probe.seconds_per_step > 0 and probe.seconds_per_token > 0
    # a budget under what the settings ask for: the plan cuts, fits, and its overrides reach the config
    budget = asked.seconds * 0.6
    fitted, sized, _ = make_plan(dataset, config, ws, budget=budget, spent=0.0, phase="start", probe=probe)
    assert fitted.fits and fitted.seconds <= budget and fitted.changes
    for section, values in fitted.overrides.items():
        for key, value in values.items():
            assert getattr(getattr(sized, section), key) == value
    assert read_plan(ws) is not None and read_plan(ws).budget_seconds == budget  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="cannot hold even the smallest plan"):
        make_plan(dataset, config, ws, budget=1.0, spent=0.0, phase="start", probe=probe)


def test_apply_overrides_keeps_what_the_user_set() -> None:
    from domainfit.stages.plan import apply_overrides

    config = Config.model_validate({"train": {"learning_rate": 3e-5}, "recipe": {"max_trials": 6}})
    sized = apply_overrides(config, {"train": {"max_steps": 40, "eval_steps": 20}, "recipe": {"max_trials": 2}})
    assert sized.train.max_steps == 40 and sized.train.eval_steps == 20 and sized.recipe.max_trials == 2
    # the recipe stage must still see only the user's own choices as fixed (not the plan's, not the defaults)
    assert sized.train.model_fields_set == {"learning_rate"}
    assert sized.recipe.model_fields_set == {"max_trials"}
    assert "max_seq_length" not in sized.train.model_fields_set
    assert config.train.max_steps == -1  # the original is untouched
    with pytest.raises(ValueError):
        apply_overrides(config, {"train": {"max_steps": "many"}})


def test_train_budget_cuts_steps_or_refuses(tmp_path, mini_beir) -> None:
    from domainfit.core.errors import UsageError
    from domainfit.core.workspace import Workspace
    from domainfit.stages.train_budget import fit_train
    from domainfit.train.config import TrainConfig

    cfg = TrainConfig(max_steps=10_000, batch_size=4, max_seq_length=32, eval_steps=50)
    ws = Workspace(tmp_path / "ws")
    roomy, line = fit_train(mini_beir, ws, cfg, 10 * 24 * 3600.0, max_line_bytes=1 << 20, min_steps=2)
    assert roomy.max_steps == 10_000 and "10000 of 10000 steps" in line  # ten days hold every step
    with pytest.raises(UsageError, match="fewer than 2 training steps"):
        fit_train(mini_beir, ws, cfg, 0.01, max_line_bytes=1 << 20, min_steps=2)
    # a budget of about twenty steps' time keeps fewer steps than asked, evaluating at most three times
    per_step = float(line.split(" x ")[1].split(" s")[0])
    cut, line = fit_train(mini_beir, ws, cfg, 30 * max(per_step, 0.1) + 60, max_line_bytes=1 << 20, min_steps=2)
    assert 2 <= cut.max_steps < 10_000 and cut.eval_steps == cut.save_steps >= cut.max_steps // 2
