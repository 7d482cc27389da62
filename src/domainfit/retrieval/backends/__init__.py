"""Fast CPU encoding: the transformer of a sentence-transformers model run by onnxruntime or OpenVINO.

sentence-transformers plugs its ``backend="onnx"``/``"openvino"`` models into the
``model`` slot of its ``Transformer`` module through Optimum, which does not
install next to transformers 5. domainfit uses the same slot without Optimum:
the transformer is exported with ``torch.onnx.export`` (`export`), run by
onnxruntime or OpenVINO behind a module that returns ``last_hidden_state``
(`runtime`), and the rest of sentence-transformers (tokenizer, prompts, pooling,
normalisation, ``encode``) stays as it is. `choose` checks every fast path against
torch float32 on the user's texts before using it, and falls back to torch.
"""

from domainfit.retrieval.backends.choose import BackendChoice, BackendTrial, choose_backend

__all__ = ["BackendChoice", "BackendTrial", "choose_backend"]
