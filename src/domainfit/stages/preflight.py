"""Every input ``domainfit run`` reads, checked before its first stage, so a bad late input fails in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domainfit.config import Config
    from domainfit.data.beir import BeirDataset


def check_pipeline_inputs(data: Path | str, config: Config, max_line_bytes: int | None = None) -> BeirDataset:
    """Check every input ``domainfit run`` reads, before its first stage; return the loaded dataset.

    The BEIR folder (every file), the splits the stages evaluate (``bench.split``,
    ``eval.split`` and, when the pipeline compresses, ``compress.split``), the
    general-domain sets of the forgetting checks (``eval.general``,
    ``train.general_pairs``), the training pair file (``train.dataset``) and
    the click log (``synth.clicks.path``). Without this, a bad file read by a
    late stage (``eval`` runs after training) would fail only after hours of work.
    Raises `InputError` (``file:line: field: message``) on the first problem.
    """
    from domainfit.data.beir import load_beir
    from domainfit.data.general_set import general_dataset, general_path
    from domainfit.data.jsonl import MAX_LINE_BYTES
    from domainfit.data.judged import check_evaluated_split
    from domainfit.data.pairs import read_pairs
    from domainfit.synth.clicks import read_click_log

    limit = max_line_bytes if max_line_bytes is not None else config.data.max_line_mib << 20
    root = Path(data).expanduser().resolve()
    dataset = load_beir(root, max_line_bytes=limit or MAX_LINE_BYTES, text=config.text)
    check_evaluated_split(dataset, config.bench.split, root / "qrels", "bench.split")
    check_evaluated_split(dataset, config.eval.split, root / "qrels", "eval.split")
    if config.pipeline.compress:
        check_evaluated_split(dataset, config.compress.split, root / "qrels", "compress.split")
    if config.eval.general and config.eval.general.lower() != "none":
        general_dataset(config.eval.general, config.text)
    if config.train.general_pairs and (config.train.general_share > 0 or config.train.regularize != "none"):
        read_pairs(general_path(config.train.general_pairs), config.text)
    if config.train.dataset and not Path(config.train.dataset).expanduser().is_dir():  # folders are saved datasets
        read_pairs(config.train.dataset, config.text)
    if config.synth.clicks.path is not None:
        read_click_log(Path(config.synth.clicks.path), dataset.corpus, limit)
    return dataset
