"""The time budget: durations, the pilot schedule, fitting a plan into a budget, and estimate against actual."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domainfit.budget.duration import format_minutes, parse_duration
from domainfit.budget.estimate import Workload, estimate_stages
from domainfit.budget.fit import EVAL_QUERY_FLOOR, Schedule, fit_to_budget, still_to_run, with_schedule
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
    assert probe.batch_grouping == config.train.batch_grouping == "none" and probe.step_padded_tokens
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


def _train_only_budget(run_budget: float, work: Workload, schedule: Schedule) -> float:
    """What ``train --budget`` must be given to leave the train stage what ``run_budget`` leaves it in ``run``."""
    stages = estimate_stages(with_schedule(work, schedule), _probe())
    return run_budget - sum(s.seconds for s in stages if s.stage != "train")


@pytest.mark.parametrize("share", [0.95, 0.8, 0.5, 0.2])
def test_same_workload_same_fit_through_run_and_train(share: float) -> None:
    """``run`` (the whole loop) and ``train`` (its train stage only) cut evaluations, queries and steps alike."""
    work = _work(
        documents=45_000, queries={"train": 4800, "dev": 800, "test": 2400}, eval_pool_documents=16_000,
        eval_queries=800, eval_pool_per_query=20.0, train_steps=300, train_evaluations=7, synthetic=0,
    )  # fmt: skip
    none = Schedule(0, 40, 10, 3)
    asked = fit_to_budget(work, _probe(), none, eval_steps=50, budget_seconds=None)
    train = next(s for s in asked.stages if s.stage == "train")
    budget = asked.seconds - train.seconds * (1 - share)
    run = fit_to_budget(work, _probe(), none, eval_steps=50, budget_seconds=budget)
    alone = fit_to_budget(work, _probe(), none, eval_steps=50, budget_seconds=_train_only_budget(budget, work, none),
                          only=("train",), cut_synthetic=False)  # fmt: skip
    assert run.fits and alone.fits and run.changes  # every share cuts something
    assert (alone.workload.train_steps, alone.workload.train_evaluations, alone.workload.eval_queries) == (
        run.workload.train_steps, run.workload.train_evaluations, run.workload.eval_queries
    )  # fmt: skip
    assert alone.eval_steps == run.eval_steps and alone.changes == run.changes
    assert [s.stage for s in still_to_run(alone.stages, (), ("train",))] == ["train"]


def test_train_without_dev_split_is_not_given_evaluations() -> None:
    """No dev split: the fit cuts only steps, and never adds the evaluations it would cut elsewhere."""
    work = _work(train_evaluations=0, eval_queries=0, eval_pool_documents=0, train_steps=400, synthetic=0)
    none = Schedule(0, 40, 10, 3)
    fitted = fit_to_budget(work, _probe(), none, eval_steps=50, budget_seconds=200.0, only=("train",),
                           cut_synthetic=False)  # fmt: skip
    assert fitted.fits and fitted.workload.train_evaluations == 0
    assert fitted.workload.train_steps == 66 and fitted.changes == ["full run cut to 66 of 400 training steps"]


def _plan_config(**train: object) -> Config:
    """Settings where ``run`` and ``train`` ask for the same training run: no synthetic pairs, no search."""
    return Config.model_validate(
        {
            "train": {"max_steps": 400, "batch_size": 4, "max_seq_length": 128, "eval_steps": 20,
                      "max_negatives": 0, **train},
            "mine": {"synthetic": False},
            "recipe": {"search": False},
            "run": {"min_train_steps": 10},
        }
    )  # fmt: skip


@pytest.mark.parametrize("share", [0.9, 0.5])
def test_run_and_train_entry_points_fit_the_same_training(tmp_path, mini_beir, share: float) -> None:
    """Through ``make_plan`` (run) and ``plan_train`` (train --budget): the same steps, evaluations and queries."""
    from domainfit.core.workspace import Workspace
    from domainfit.data.beir import load_beir
    from domainfit.stages.plan import make_plan, read_plan
    from domainfit.stages.train_budget import plan_train

    config, probe = _plan_config(), _probe(step=0.5)
    dataset, ws = load_beir(mini_beir), Workspace(tmp_path / "run")
    asked, _, _ = make_plan(dataset, config, ws, budget=None, spent=0.0, phase="start", probe=probe)
    train = next(s for s in asked.stages if s["stage"] == "train")
    budget = asked.seconds - train["seconds"] * (1 - share)
    run, run_config, _ = make_plan(dataset, config, ws, budget=budget, spent=0.0, phase="start", probe=probe)
    alone, train_config = plan_train(mini_beir, Workspace(tmp_path / "train"), config, train["seconds"] - (
        asked.seconds - budget), probe=probe)  # fmt: skip
    keys = ("train_steps", "train_evaluations", "eval_queries", "eval_pool_documents", "negatives", "labelled")
    assert {k: alone.workload[k] for k in keys} == {k: run.workload[k] for k in keys}
    assert alone.workload["train_steps"] < 400 and alone.changes == run.changes
    assert train_config.train == run_config.train  # the same [train] overrides reach the trainer
    assert [s["stage"] for s in alone.stages] == ["train"] and alone.phase == "train"
    assert alone.seconds <= alone.budget_seconds  # type: ignore[operator]
    assert read_plan(Workspace(tmp_path / "train")).phase == "train"  # type: ignore[union-attr]


def test_train_budget_prints_the_plan_and_refuses_saying_by_how_much(tmp_path, mini_beir) -> None:
    from domainfit.core.errors import UsageError
    from domainfit.core.workspace import Workspace
    from domainfit.stages.plan import plan_lines
    from domainfit.stages.train_budget import plan_train

    config, probe, ws = _plan_config(), _probe(step=0.5), Workspace(tmp_path / "ws")
    roomy, sized = plan_train(mini_beir, ws, config, 10 * 24 * 3600.0, probe=probe)
    assert roomy.fits and not roomy.changes and sized.train.max_steps == 400  # ten days hold every step
    head, parts = plan_lines(roomy)
    assert head.startswith("plan (train): ") and "of a 14400.0 min budget" in head
    assert "400 steps at 128 tokens" in head and "21 dev evaluations" in head and "0 pilots" in head
    assert parts.startswith("plan: train 2.3 min") and "steps 2.2 min" in parts  # 400 x 0.5 s x 2 of 3 texts
    # 10 steps (the floor) x 0.33 s + two evaluations cannot fit in 2 s: refused, with by how much
    refusal = r"budget of 2 s cannot hold even the smallest plan \(\d+ s, \d+ s over: train"
    with pytest.raises(UsageError, match=refusal):
        plan_train(mini_beir, Workspace(tmp_path / "refused"), config, 2.0, probe=probe)
    assert not (tmp_path / "refused").exists()  # nothing written before refusing


def test_train_budget_records_estimate_against_actual(tmp_path, mini_beir) -> None:
    import json

    from domainfit.core.workspace import Workspace
    from domainfit.stages.train_budget import plan_train, record_train

    ws = Workspace(tmp_path / "ws")
    assert record_train(ws, "ran", 10.0) is None  # no plan of train's: nothing recorded
    plan, _ = plan_train(mini_beir, ws, _plan_config(), 600.0, probe=_probe(step=0.5))
    line = record_train(ws, "ran", 2 * plan.stages[0]["seconds"])
    timings = json.loads((tmp_path / "ws" / "plan" / "timings.json").read_text())
    (row,) = timings["stages"]
    assert row["stage"] == "train" and row["estimate"] == plan.stages[0]["seconds"] and row["ratio"] == 2.0
    assert timings["budget_seconds"] == 600.0 and line is not None and "of a 10.0 min budget" in line


@pytest.mark.slow  # measures a probe and trains a real model (6 steps)
def test_train_budget_cli_plans_trains_records_and_refuses(tmp_path, mini_beir) -> None:
    """``train --budget``: the plan on stderr before training, estimate against actual after; a short budget is
    refused (exit 2, one line, by how much) with the workspace's probe, before any training."""
    import json

    from typer.testing import CliRunner

    from domainfit.cli import app

    config = tmp_path / "domainfit.toml"
    config.write_text(
        "[train]\nmax_steps = 6\nbatch_size = 4\nmax_seq_length = 32\neval_steps = 2\n\n[run]\nmin_train_steps = 2\n"
    )
    runner, ws = CliRunner(env={"NO_COLOR": "1"}), tmp_path / "ws"
    argv = ["train", str(mini_beir), "--workspace", str(ws), "--config", str(config), "--quiet"]
    done = runner.invoke(app, [*argv[:-1], "--budget", "30m"])
    assert done.exit_code == 0, done.output
    assert done.stderr.index("plan (train): ") < done.stderr.index("plan: train ")
    assert "6 steps at 32 tokens" in done.stderr and "of a 30.0 min budget" in done.stderr
    assert "time: " in done.stdout and "against an estimate of" in done.stdout
    (row,) = json.loads((ws / "plan" / "timings.json").read_text())["stages"]
    assert row["stage"] == "train" and row["status"] == "ran" and row["estimate"] > 0
    plan = (ws / "plan" / "plan.json").read_text()
    refused = runner.invoke(app, [*argv, "--budget", "0.05s"])  # less than loading the model takes
    assert refused.exit_code == 2 and "Traceback" not in refused.stderr, refused.output
    (line,) = [x for x in refused.stderr.splitlines() if "budget" in x]
    assert "cannot hold even the smallest plan (" in line and " over: train " in line and "raise --budget" in line
    assert (ws / "plan" / "plan.json").read_text() == plan  # the refused plan is not written
