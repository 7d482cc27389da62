"""Settings of the ``train`` stage (the ``[train]`` section of ``domainfit.toml``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domainfit.core.models import DEFAULT_MODEL

LOSSES = ("mnrl", "cached-mnrl", "triplet", "contrastive", "cosine", "margin-mse")
#: Levels of effort, cheapest first (`domainfit.train.levels`).
LEVELS = ("prompts", "adapter", "static", "top-layers", "full")
Level = Literal["prompts", "adapter", "static", "top-layers", "full"]


class TrainConfig(BaseModel):
    """CPU-friendly defaults: short sequences, small batches, one epoch, frequent small evaluations."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    base_model: str = DEFAULT_MODEL
    loss: str = Field("mnrl", description=f"one of {', '.join(LOSSES)}")
    temperature: float = Field(0.05, gt=0, description="InfoNCE temperature; MNRL scale = 1 / temperature")
    matryoshka_dims: list[int] | None = Field(None, description="wrap the loss in MatryoshkaLoss at these dims")
    mini_batch_size: int = Field(16, ge=1, description="cached-mnrl: GradCache mini-batch size")
    gather_across_devices: bool = Field(
        True, description="mnrl/cached-mnrl under a launcher: in-batch negatives from every device's batch"
    )
    triplet_margin: float = Field(0.3, ge=0)
    contrastive_margin: float = Field(0.5, ge=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="stop after this many steps (-1: run the epochs)")
    batch_size: int = Field(32, ge=2)
    learning_rate: float = Field(2e-5, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, le=1)
    max_seq_length: int = Field(128, ge=8)
    max_negatives: int = Field(1, ge=0, description="hard negatives per example used by the loss")
    synthetic_share: float | None = Field(
        None, ge=0, le=1, description="largest share of synthetic pairs taken from mine's dataset (None: all)"
    )
    query_prompt: str = Field("", description="prepended to queries (saved in the model as prompt 'query')")
    document_prompt: str = Field("", description="prepended to documents (saved as prompt 'document')")
    eval_steps: int = Field(50, ge=1)
    save_steps: int = Field(50, ge=1)
    save_total_limit: int = Field(2, ge=1)
    early_stopping_patience: int | None = Field(3, ge=1)
    eval_corpus: Literal["pool", "full", "sample"] = Field(
        "pool", description="dev documents: judged + top of BM25 and base (pool), all (full), or random (sample)"
    )
    eval_pool_depth: int = Field(20, ge=10, description="pool: top documents of BM25 and the base model per query")
    eval_max_corpus: int = Field(1000, ge=10, description="sample: relevant docs plus random others up to this")
    eval_max_queries: int | None = Field(
        None, ge=10, description="dev queries the evaluations during training score, sampled (None: all)"
    )
    eval_split: str = "dev"
    train_split: str = "train"
    seed: int = 13
    dataset: str | None = Field(None, description="training data: a pair file or saved dataset; default: mine output")
    general_pairs: str | None = Field(
        None, description='general-domain pair file mixed in against forgetting; "bundled": the packaged set'
    )
    general_share: float = Field(0.2, ge=0, lt=1, description="share of general pairs in the training mix")
    curriculum: bool = Field(False, description="train on mine's curriculum stages in order, easy to hard")
    merge: bool = Field(False, description="also save base/fine-tuned weight interpolation chosen on dev")
    regularize: Literal["none", "mse"] = Field(
        "none", description="mse: also distil the base model's embeddings of general texts (general_pairs or bundled)"
    )
    regularize_weight: float = Field(1.0, gt=0, description="weight of the regularisation term (squared L2 distance)")
    regularize_share: float = Field(0.2, gt=0, lt=1, description="share of training batches that regularise")
    separate_encoders: bool = Field(False, description="train separate query and document encoders (a Router)")
    level: Level = Field(
        "full",
        description="prompts (no weight change), adapter (query side only), static (own static-embedding model), "
        "top-layers (top N layers), full (every weight)",
    )
    top_layers: int = Field(
        2, ge=0, description="top-layers: layers trained from the top; 0: chosen on dev among top_layers_candidates"
    )
    top_layers_candidates: list[int] = Field([1, 2, 3], description="top-layers with top_layers = 0: N tried on dev")
    prompt_candidates: list[tuple[str, str]] = Field(
        [], description="prompts: (query prompt, document prompt) pairs tried on dev besides the built-in templates"
    )
    adapter: Literal["linear", "lowrank", "mlp"] = Field(
        "linear", description="adapter: query-side map (identity at start): linear, lowrank (I + U V^T) or mlp"
    )
    adapter_hidden: int = Field(256, ge=1, description="adapter mlp: hidden width of the residual branch")
    adapter_rank: int = Field(32, ge=1, description="adapter lowrank: rank r of U V^T")
    adapter_epochs: int = Field(60, ge=1, description="adapter: most passes over the training pairs")
    adapter_patience: int = Field(8, ge=1, description="adapter: epochs without a dev gain before stopping")
    adapter_learning_rate: float = Field(3e-4, gt=0)
    adapter_batch_size: int | None = Field(
        32, ge=2, description="adapter: pairs per batch (its in-batch negatives); None: [train] batch_size"
    )
    adapter_hard_negatives: Literal["dev", "always", "never"] = Field(
        "dev", description="adapter: train with the mined hard negatives, without, or both and keep the better on dev"
    )
    batch_grouping: Literal["none", "length"] = Field(
        "none", description="length: batches of similar text length (less padding), no duplicate text in a batch"
    )
    threads: int = Field(0, ge=0, description="torch intra-op threads while training (0: torch's default)")
    static_source: Literal["distill", "tokenlearn"] = Field(
        "distill", description="static: distil the base model's vocabulary (model2vec) or start from tokenlearn's"
    )
    static_dims: int | None = Field(256, ge=2, description="static distil: PCA dimensions (None: the base width)")
    static_learning_rate: float = Field(
        0.01, gt=0, description="static: learning rate of the embedding table (0.05 overfits a few thousand pairs)"
    )

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        """Reject loss names the registry does not know."""
        if value not in LOSSES:
            raise ValueError(f"unknown loss {value!r}; use one of {', '.join(LOSSES)}")
        return value

    @field_validator("matryoshka_dims")
    @classmethod
    def _dims_descending(cls, value: list[int] | None) -> list[int] | None:
        """Matryoshka dims must be positive; they are kept largest first."""
        if value is None:
            return None
        if not value or min(value) < 1:
            raise ValueError("matryoshka_dims must be a non-empty list of positive sizes")
        return sorted(set(value), reverse=True)
