from pathlib import Path

import numpy as np
import pytest

from domainfit.core.models import (
    DEFAULT_MODEL,
    ModelNotFoundError,
    folder_fingerprint,
    load_bi_encoder,
    model_fingerprint,
    offline_names,
    resolve_model,
)


def test_packaged_name_and_alias_resolve_offline():
    resolved = resolve_model(DEFAULT_MODEL)
    assert resolved.source == "packaged"
    assert (resolved.path / "model.safetensors").is_file()
    assert resolve_model("all-MiniLM-L6-v2").path == resolved.path
    assert DEFAULT_MODEL in offline_names()


def test_local_folder_resolves(tmp_path, minilm):
    minilm.save(str(tmp_path / "copy"))
    resolved = resolve_model(str(tmp_path / "copy"))
    assert resolved.source == "local"
    copy = load_bi_encoder(str(tmp_path / "copy"))
    a = copy.encode(["hello world"], normalize_embeddings=True)
    b = minilm.encode(["hello world"], normalize_embeddings=True)
    assert np.allclose(a, b, atol=1e-5)


def test_unknown_name_gives_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model("acme/no-such-model")
    message = str(info.value)
    assert "\n" not in message
    assert "acme/no-such-model" in message and DEFAULT_MODEL in message


def test_missing_local_path_is_an_error(tmp_path):
    with pytest.raises(ModelNotFoundError):
        resolve_model(str(tmp_path / "nope"))


def test_pickled_weights_are_refused(tmp_path, minilm):
    folder = tmp_path / "pickled"
    minilm.save(str(folder))
    for file in folder.rglob("*.safetensors"):
        file.rename(file.with_suffix(".bin"))
    from domainfit.core.errors import UsageError

    with pytest.raises(UsageError, match="safetensors"):
        load_bi_encoder(str(folder))


def test_fingerprint_changes_with_weights_and_settings(tmp_path, minilm):
    base = model_fingerprint(minilm)
    assert base == model_fingerprint(minilm)
    assert model_fingerprint(minilm, extra="prompt") != base
    path = Path(resolve_model(DEFAULT_MODEL).path)
    assert folder_fingerprint(path) == folder_fingerprint(path)
