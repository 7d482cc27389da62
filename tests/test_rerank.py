import numpy as np
import pytest

from domainfit.data.beir import load_beir
from domainfit.models import load_cross_encoder, resolve_model
from domainfit.retrieval.rerank import rerank


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory):
    """A cross-encoder built from the packaged MiniLM weights with a fresh 1-label head, saved as safetensors."""
    from sentence_transformers import CrossEncoder

    folder = tmp_path_factory.mktemp("ce") / "tiny-ce"
    model = CrossEncoder(str(resolve_model("all-MiniLM-L6-v2").path), num_labels=1, device="cpu")
    model.save(str(folder))
    return folder


def test_rerank_scores_top_depth_with_the_cross_encoder(mini_beir, tiny_cross_encoder):
    data = load_beir(mini_beir)
    model = load_cross_encoder(str(tiny_cross_encoder))
    first = {"q": {f"d{i:03d}": float(20 - i) for i in range(1, 11)}}
    out = rerank(first, {"q": "refund policy"}, data.corpus, model, depth=5)
    assert set(out["q"]) == {"d001", "d002", "d003", "d004", "d005"}
    pairs = [("refund policy", data.corpus[d].full_text()) for d in out["q"]]
    expected = model.predict(pairs)
    assert np.allclose(list(out["q"].values()), expected, atol=1e-5)
