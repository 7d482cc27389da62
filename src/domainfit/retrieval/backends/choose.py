"""Choose the encoding backend: build each fast path, check it against torch float32 on the user's texts, time it.

`choose_backend` returns a `BackendChoice`: the model to encode with (a copy
running the chosen runtime, or the torch model itself) and one `BackendTrial` per
path tried, with its lowest and mean cosine to torch float32 on the sampled texts,
its speed on them and, when it was not used, why. ``auto`` takes the fastest path
that passes; a named backend is used when it passes, else torch.
"""

from __future__ import annotations

import random
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from domainfit.retrieval.backends.export import (
    export_onnx,
    export_openvino,
    quantize_int8,
    transformer_of,
    weights_fingerprint,
)
from domainfit.retrieval.backends.runtime import OnnxRuntimeNetwork, OpenVinoNetwork, with_network
from domainfit.retrieval.config import EncodeConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: The fast paths ``auto`` tries, in this order.
FAST_BACKENDS = ("onnx-int8", "openvino", "onnx")


@dataclass
class BackendTrial:
    """One backend tried; ``status``: ``chosen``, ``passed`` (checked, not the fastest), ``rejected``, ``failed``."""

    backend: str
    status: str
    reason: str = ""
    min_cosine: float | None = None
    mean_cosine: float | None = None
    texts_per_second: float | None = None
    seconds_to_prepare: float | None = None


@dataclass
class BackendChoice:
    """The backend chosen for encoding, the model that encodes with it, and every trial."""

    requested: str
    chosen: str
    model: Any = field(repr=False)
    trials: list[BackendTrial] = field(default_factory=list)
    checked_texts: int = 0
    min_cosine: float = 0.99

    def to_json(self) -> dict[str, Any]:
        """Return the choice for results and reports (the model left out)."""
        return {
            "requested": self.requested,
            "chosen": self.chosen,
            "checked_texts": self.checked_texts,
            "min_cosine_required": self.min_cosine,
            "trials": [asdict(t) for t in self.trials],
        }


def build_backend(model: SentenceTransformer, backend: str, folder: Path) -> SentenceTransformer:
    """Return a copy of ``model`` encoding with ``backend``, exporting into ``folder`` what is not there yet.

    Raises ValueError when the model has no exportable transformer, and whatever the
    exporter or runtime raises when a path does not work for this model.
    """
    config = transformer_of(model).auto_model.config
    onnx = export_onnx(model, folder / "onnx")  # every path starts from the float32 ONNX graph
    if backend == "onnx":
        return with_network(model, OnnxRuntimeNetwork(onnx, config), backend)
    if backend == "onnx-int8":
        return with_network(model, OnnxRuntimeNetwork(quantize_int8(onnx, folder / "onnx-int8"), config), backend)
    if backend == "openvino":
        return with_network(model, OpenVinoNetwork(export_openvino(onnx, folder / "openvino"), config), backend)
    raise ValueError(f"unknown backend {backend!r}")


def sample_texts(texts: list[str], n: int, seed: int) -> list[str]:
    """Return a seeded sample of ``n`` distinct non-empty texts, the longest always among them."""
    distinct = sorted({t for t in texts if t.strip()})
    if len(distinct) <= n:
        return distinct
    longest = max(distinct, key=len)
    rest = [t for t in distinct if t != longest]
    return [longest, *random.Random(seed).sample(rest, n - 1)]


def failure_reason(exc: BaseException) -> str:
    """Return one line naming an exception: its type and first line of message, terminal colours removed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    hint = " (install the extra: pip install 'domainfit[fast]')" if isinstance(exc, ModuleNotFoundError) else ""
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"[:300] + hint


def _encode(model: SentenceTransformer, texts: list[str], batch_size: int) -> tuple[np.ndarray, float]:
    """Encode normalised (one warm-up batch first); return the vectors and the texts per second."""
    model.encode(texts[:2], batch_size=batch_size, show_progress_bar=False)
    start = time.perf_counter()
    vectors = model.encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32), len(texts) / max(time.perf_counter() - start, 1e-9)


def _try(
    model: SentenceTransformer,
    backend: str,
    folder: Path,
    texts: list[str],
    reference: np.ndarray,
    cfg: EncodeConfig,
    batch_size: int,
) -> tuple[BackendTrial, SentenceTransformer | None]:
    """Build, check and time one fast path; return its trial and the model (None unless it passed)."""
    start = time.perf_counter()
    try:
        fast = build_backend(model, backend, folder)
        prepared = time.perf_counter() - start
        vectors, speed = _encode(fast, texts, batch_size)
    except Exception as exc:  # an export or runtime that does not work for this model: torch stays
        return BackendTrial(backend, "failed", failure_reason(exc)), None
    cosines = np.sum(vectors * reference, axis=1)
    trial = BackendTrial(
        backend, "passed", min_cosine=round(float(cosines.min()), 5), mean_cosine=round(float(cosines.mean()), 5),
        texts_per_second=round(speed, 2), seconds_to_prepare=round(prepared, 2),
    )  # fmt: skip
    if cosines.min() < cfg.min_cosine:
        worst = int(np.argmin(cosines))
        trial.status = "rejected"
        trial.reason = f"cosine {cosines[worst]:.4f} < {cfg.min_cosine} on text {worst} of the {len(texts)} checked"
        return trial, None
    return trial, fast


def choose_backend(
    model: SentenceTransformer,
    texts: list[str],
    cfg: EncodeConfig,
    cache_root: Path | None = None,
    *,
    batch_size: int = 32,
) -> BackendChoice:
    """Pick the backend to encode ``texts`` with under ``cfg`` (see the module docstring).

    Inputs: the torch model as loaded, the texts about to be encoded (a sample is
    checked), the ``[encode]`` settings and the folder exports are cached in
    (``<cache_root>/<weights fingerprint>/``; None: a temporary folder, removed).
    Output: a `BackendChoice`; ``choice.model`` is ``model`` itself for torch.
    """
    choice = BackendChoice(cfg.backend, "torch", model, min_cosine=cfg.min_cosine)
    if cfg.backend == "torch":
        return choice
    checked = sample_texts(list(texts), cfg.check_texts, cfg.seed)
    choice.checked_texts = len(checked)
    if not checked:
        choice.trials.append(BackendTrial(cfg.backend, "failed", "no text to check the fast path on"))
        return choice
    reference, torch_speed = _encode(model, checked, batch_size)
    torch_trial = BackendTrial(
        "torch", "passed", min_cosine=1.0, mean_cosine=1.0, texts_per_second=round(torch_speed, 2)
    )
    candidates = FAST_BACKENDS if cfg.backend == "auto" else (cfg.backend,)
    passed: list[tuple[BackendTrial, SentenceTransformer]] = []
    with tempfile.TemporaryDirectory(prefix="domainfit-export-") as scratch:
        folder = (cache_root if cache_root is not None else Path(scratch)) / weights_fingerprint(model)
        for backend in candidates:
            trial, fast = _try(model, backend, folder, checked, reference, cfg, batch_size)
            choice.trials.append(trial)
            if fast is not None:
                passed.append((trial, fast))
            if trial.status == "failed" and not (folder / "onnx").is_dir():
                for rest in candidates[candidates.index(backend) + 1 :]:  # each starts from the failed export
                    choice.trials.append(BackendTrial(rest, "failed", f"no ONNX export: {trial.reason}"))
                break
    choice.trials.append(torch_trial)
    if passed:
        best, fast = max(passed, key=lambda p: p[0].texts_per_second or 0.0)
        if cfg.backend != "auto" or (best.texts_per_second or 0.0) > torch_speed:
            best.status = "chosen"
            choice.chosen, choice.model = best.backend, fast
            return choice
        best.reason = "slower than torch on the checked texts"
    torch_trial.status = "chosen"
    return choice
