"""A training run killed after a checkpoint and resumed ends with the uninterrupted run's weights;
the saved model reproduces domainfit's embeddings under bare sentence-transformers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from sentence_transformers import SentenceTransformer

from domainfit.core.progress import set_quiet
from domainfit.core.workspace import Workspace
from domainfit.data.beir import load_beir
from domainfit.retrieval.dense import DenseRetriever
from domainfit.stages.train import run_train
from domainfit.train.config import TrainConfig

SETTINGS = {
    "batch_size": 4,
    "max_seq_length": 32,
    "eval_steps": 2,
    "save_steps": 2,
    "save_total_limit": 10,
    "eval_max_corpus": 30,
    "learning_rate": 5e-4,
    "early_stopping_patience": None,
    "epochs": 3.0,
    "query_prompt": "query: ",
    "document_prompt": "passage: ",
}


def _config_file(path: Path) -> Path:
    """Write SETTINGS as the ``[train]`` section of a domainfit.toml (TOML has no null: unset keys are left out)."""
    lines = ["[train]"] + [f"{key} = {json.dumps(value)}" for key, value in SETTINGS.items() if value is not None]
    path.write_text("\n".join(lines) + "\n")
    return path


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _train_and_kill(data: Path, ws: Path, config: Path) -> Path:
    """Start ``domainfit train`` and SIGKILL it as soon as its first checkpoint is complete."""
    cli = str(Path(sys.executable).parent / "domainfit")
    cmd = [cli, "train", str(data), "--workspace", str(ws), "--config", str(config)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    marker = ws / "train-checkpoints" / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 600
    try:
        while not marker.is_file():
            assert proc.poll() is None, "training ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 10 minutes"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return marker.parent


def test_killed_then_resumed_run_matches_an_uninterrupted_run(tmp_path, mini_beir):
    set_quiet(True)
    config = _config_file(tmp_path / "domainfit.toml")
    cfg = TrainConfig(**SETTINGS)
    whole = run_train(mini_beir, Workspace(tmp_path / "whole"), cfg)
    assert whole.steps == 6  # 8 pairs, batch 4, 3 epochs

    killed = tmp_path / "killed"
    _train_and_kill(mini_beir, killed, config)
    assert not (killed / "train" / "result.json").exists()  # nothing half-written by the killed run
    resumed = run_train(mini_beir, Workspace(killed), cfg, resume=True)
    assert resumed.resumed_from is not None and "checkpoint-" in resumed.resumed_from
    assert resumed.steps == whole.steps and resumed.best_step == whole.best_step

    a = _weights(tmp_path / "whole" / "train" / "model")
    b = _weights(killed / "train" / "model")
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=f"{name} differs after resume")


def test_saved_model_reproduces_domainfit_embeddings_in_bare_sentence_transformers(tmp_path, mini_beir, capfd):
    set_quiet(True)
    cfg = TrainConfig(**{**SETTINGS, "epochs": 1.0})
    result = run_train(mini_beir, Workspace(tmp_path / "ws"), cfg)
    assert capfd.readouterr().out == ""  # quiet training prints nothing on stdout (`--json` output stays clean)
    dataset = load_beir(mini_beir)
    queries = [q.text for q in dataset.queries.values()]
    documents = [d.full_text() for d in dataset.corpus.values()]

    ours = DenseRetriever(result.model_path, max_seq_length=32)
    bare = SentenceTransformer(result.model_path, device="cpu")  # no domainfit code involved
    assert bare.prompts["query"] == "query: " and bare.prompts["document"] == "passage: "
    q_bare = bare.encode(queries, prompt_name="query", normalize_embeddings=True)
    d_bare = bare.encode(documents, prompt_name="document", normalize_embeddings=True)
    np.testing.assert_allclose(ours.encode_queries(queries), q_bare, atol=1e-5)
    np.testing.assert_allclose(ours.encode_documents(documents), d_bare, atol=1e-5)
    # the prompts matter: without them the embeddings differ
    assert not np.allclose(bare.encode(queries[:2], normalize_embeddings=True), q_bare[:2], atol=1e-3)


def test_training_positives_longer_than_the_window_are_counted_and_warned(minilm):
    from domainfit.data.truncation import TruncationWarning
    from domainfit.train.data import Example
    from domainfit.train.trainer import truncated_positives as _truncated_positives

    long_text = "refund policy " * 60  # about 120 tokens
    examples = [Example("q1", "short answer"), Example("q2", long_text), Example("q3", long_text + "x")]
    window = minilm.max_seq_length
    minilm.max_seq_length = 64  # as run_train loads it with TrainConfig(max_seq_length=64)
    try:
        with pytest.warns(TruncationWarning, match="2 of 3 training positives"):
            assert _truncated_positives(minilm, examples, TrainConfig(base_model="probe-a")) == 2
        assert _truncated_positives(minilm, examples[:1], TrainConfig(base_model="probe-b")) == 0
        assert _truncated_positives(minilm, examples, TrainConfig(separate_encoders=True)) is None
    finally:
        minilm.max_seq_length = window
