"""Run an exported transformer where sentence-transformers runs its own: the ``Transformer`` module's model slot.

`OnnxRuntimeNetwork` and `OpenVinoNetwork` take the tensors the tokenizer made
and return ``{"last_hidden_state": tensor}``, as the Hugging Face model did, so
pooling, normalisation, prompts and ``SentenceTransformer.encode`` are
sentence-transformers' own. `with_network` returns a copy of the model whose
transformer runs on one of them; the torch model given is left untouched.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from domainfit.retrieval.backends.export import transformer_of

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def cpu_threads() -> int:
    """Return the threads a runtime gets: as many as torch uses on this machine."""
    return max(1, torch.get_num_threads())


class _Network(torch.nn.Module):
    """Base of the stand-ins: the transformer's config and a CPU device, no parameters."""

    def __init__(self, config: Any, inputs: list[str]) -> None:
        super().__init__()
        self.config = config
        self.inputs = inputs
        self.device = torch.device("cpu")

    def _feeds(self, tensors: dict[str, Any]) -> dict[str, np.ndarray]:
        """Return the graph's inputs as int64 numpy arrays."""
        return {name: tensors[name].cpu().numpy().astype(np.int64, copy=False) for name in self.inputs}

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def forward(self, **tensors: Any) -> dict[str, torch.Tensor]:
        """Return ``{"last_hidden_state": (batch, tokens, hidden) float32}`` for the tokenizer's tensors."""
        return {"last_hidden_state": torch.from_numpy(np.ascontiguousarray(self._run(self._feeds(tensors))))}


class OnnxRuntimeNetwork(_Network):
    """An ONNX transformer in an onnxruntime session: every graph optimisation on, one thread per core."""

    def __init__(self, path: Path, config: Any) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = cpu_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        super().__init__(config, [i.name for i in self.session.get_inputs()])

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.session.run(["last_hidden_state"], feeds)[0], dtype=np.float32)


class OpenVinoNetwork(_Network):
    """An OpenVINO IR transformer compiled for the CPU, latency hint, float32 inference precision."""

    def __init__(self, path: Path, config: Any) -> None:
        import openvino as ov

        core = ov.Core()
        network = core.read_model(str(path))
        self.compiled = core.compile_model(
            network,
            "CPU",
            {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": cpu_threads(), "INFERENCE_PRECISION_HINT": "f32"},
        )
        super().__init__(config, [port.get_any_name() for port in network.inputs])

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(self.compiled(feeds)[0], dtype=np.float32)


def with_network(model: SentenceTransformer, network: _Network, backend: str) -> SentenceTransformer:
    """Return a shallow copy of ``model`` whose transformer runs ``network``; ``model`` itself is unchanged.

    The copy shares the tokenizer, pooling and every other module, and is marked
    with ``backend`` (read by `domainfit.core.models.model_fingerprint`, so its
    cached embeddings are kept apart from torch's).
    """
    transformer = transformer_of(model)
    fast_transformer = copy.copy(transformer)
    fast_transformer._modules = dict(transformer._modules)
    fast_transformer._modules["model"] = network
    fast = copy.copy(model)
    fast._modules = dict(model._modules)
    first = next(iter(model._modules))
    fast._modules[first] = fast_transformer
    setattr(fast, "_domainfit_backend", backend)  # noqa: B010 - read by model_fingerprint
    return fast
