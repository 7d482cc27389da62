import numpy as np

from domainfit.core.models import load_cross_encoder
from domainfit.data.beir import load_beir
from domainfit.retrieval.rerank import rerank


def test_rerank_scores_top_depth_with_the_cross_encoder(mini_beir, tiny_cross_encoder):
    data = load_beir(mini_beir)
    model = load_cross_encoder(str(tiny_cross_encoder))
    first = {"q": {f"d{i:03d}": float(20 - i) for i in range(1, 11)}}
    out = rerank(first, {"q": "refund policy"}, data.corpus, model, depth=5)
    assert set(out["q"]) == {"d001", "d002", "d003", "d004", "d005"}
    pairs = [("refund policy", data.corpus[d].full_text()) for d in out["q"]]
    expected = model.predict(pairs)
    assert np.allclose(list(out["q"].values()), expected, atol=1e-5)
