"""Export the transformer of a sentence-transformers model once, into a cache folder domainfit owns.

Layout under ``<root>/<weights fingerprint>/``: ``onnx/model.onnx`` (float32,
``torch.onnx.export``), ``onnx-int8/model.onnx`` (``onnxruntime.quantization.quantize_dynamic``
of the former: int8 weights of every MatMul, activations quantised per batch),
``openvino/model.xml`` + ``.bin`` (the float32 ONNX graph converted by OpenVINO).
Each folder is written under a temporary name and renamed into place, so an
interrupted export leaves nothing that is read later.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from domainfit.core.models import folder_fingerprint

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: The inputs a BERT-like transformer takes, in the order the exported graph takes them.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
#: ONNX opset of the export.
OPSET = 18


def weights_fingerprint(model: SentenceTransformer) -> str:
    """Return a content hash of the model's weights (its folder's files, else its tensors)."""
    folder = getattr(model, "_domainfit_path", None)
    if folder is not None and Path(folder).is_dir():
        return folder_fingerprint(Path(folder))[:16]
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def transformer_of(model: SentenceTransformer) -> Any:
    """Return the model's first module when it is a plain text ``Transformer``; raise ValueError otherwise.

    Models with separate query/document routes (a ``Router``) or without a transformer
    (static embeddings) have nothing to export: their encoding stays on torch.
    """
    from sentence_transformers.base.modules import Transformer

    first = model[0] if len(model) else None
    if not isinstance(first, Transformer):
        raise ValueError(f"the first module is {type(first).__name__}, not a Transformer: nothing to export")
    if first.backend != "torch" or first.tokenizer is None:
        raise ValueError("the transformer is not a torch text model")
    return first


def input_names(transformer: Any) -> list[str]:
    """Return the inputs the model's tokenizer produces that the exported graph takes."""
    produced = transformer.tokenizer(["a b"], return_tensors="pt").keys()
    return [name for name in INPUT_NAMES if name in produced]


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence the exporters' advice (warnings and log records below ERROR) while they run."""
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger, _ in saved:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in saved:
                logger.setLevel(level)


def _publish(final: Path, write: Callable[[Path], None]) -> Path:
    """Write an artifact folder under a temporary name beside ``final``, then rename it into place."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        write(staging)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def export_onnx(model: SentenceTransformer, folder: Path) -> Path:
    """Export the model's transformer to ``folder/model.onnx`` (float32, dynamic batch and length).

    Inputs: a loaded sentence-transformers model and the artifact folder (created).
    Output: the path of ``model.onnx``. Its inputs are `input_names`, its output
    ``last_hidden_state`` (batch, tokens, hidden). Uses the torch.export-based exporter.
    """
    import torch

    transformer = transformer_of(model)
    names = input_names(transformer)
    if names[:2] != ["input_ids", "attention_mask"]:
        raise ValueError(f"the tokenizer makes {names}, not input_ids and attention_mask")
    network = transformer.auto_model

    class _LastHidden(torch.nn.Module):
        """The transformer as a function of its input tensors, returning the token embeddings."""

        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
        ) -> torch.Tensor:
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            inputs = {name: value for name, value in given.items() if value is not None}
            return self.network(**inputs, return_dict=True).last_hidden_state

    sample = transformer.tokenizer(
        ["domainfit exports this", "and a longer second text, to pad"], return_tensors="pt", padding=True
    )
    args = tuple(sample[name] for name in names)
    batch, tokens = torch.export.Dim("batch"), torch.export.Dim("tokens")

    def write(staging: Path) -> None:
        with _quiet("torch.onnx", "torch.export"), torch.no_grad(), contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(
                _LastHidden().eval(),
                args,
                str(staging / "model.onnx"),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_shapes={name: {0: batch, 1: tokens} for name in names},
                opset_version=OPSET,
                dynamo=True,
                external_data=False,
                verbose=False,
            )

    return _publish(folder, write) / "model.onnx"


def quantize_int8(onnx_path: Path, folder: Path) -> Path:
    """Write ``folder/model.onnx``: ``onnx_path`` with int8 weights for every MatMul (dynamic quantisation).

    Activations are quantised per batch at run time, so no calibration data is needed.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(staging: Path) -> None:
        with _quiet("", "onnxruntime"):  # the quantiser logs its advice on the root logger
            quantize_dynamic(
                onnx_path,
                staging / "model.onnx",
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )

    return _publish(folder, write) / "model.onnx"


def export_openvino(onnx_path: Path, folder: Path) -> Path:
    """Write ``folder/model.xml`` (+ ``model.bin``): the float32 ONNX graph converted by OpenVINO, float32 weights."""
    import openvino as ov

    def write(staging: Path) -> None:
        ov.save_model(ov.convert_model(str(onnx_path)), str(staging / "model.xml"), compress_to_fp16=False)

    return _publish(folder, write) / "model.xml"
