"""Shared fixtures: a small real BEIR folder and the packaged MiniLM model (loaded once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from domainfit.core.types import Document, Query
from domainfit.data.beir import BeirDataset, write_beir

TOPICS = {
    "auth": [
        (
            "ERR_AUTH_702 token expired",
            "Login fails with ERR_AUTH_702 when the session token has expired; refresh the token.",
        ),
        (
            "reset password link",
            "To reset a password, open the account page and request a reset link by email.",
        ),
        (
            "two factor setup",
            "Enable two-factor authentication with an authenticator app under security settings.",
        ),
        (
            "sso saml configuration",
            "Single sign-on uses SAML; upload the identity provider metadata XML to configure it.",
        ),
    ],
    "billing": [
        (
            "invoice pdf download",
            "Invoices can be downloaded as PDF files from the billing history page.",
        ),
        ("change credit card", "Update the credit card used for payments in the billing settings."),
        ("refund policy", "Refunds are issued within 14 days of purchase for annual plans only."),
        (
            "vat number eu",
            "Companies in the EU can add a VAT number so invoices omit value-added tax.",
        ),
    ],
    "storage": [
        (
            "bucket quota exceeded",
            "Uploads fail with QUOTA_409 once a storage bucket exceeds its quota.",
        ),
        (
            "lifecycle rules archive",
            "Lifecycle rules move objects to the archive tier after a configurable number of days.",
        ),
        (
            "presigned url expiry",
            "A presigned URL grants temporary access and expires after at most seven days.",
        ),
        (
            "multipart upload limit",
            "Multipart uploads accept up to 10,000 parts of at least 5 MiB each.",
        ),
    ],
    "network": [
        (
            "vpc peering routes",
            "VPC peering needs route table entries on both sides to exchange traffic.",
        ),
        (
            "load balancer health check",
            "The load balancer marks a target unhealthy after three failed health checks.",
        ),
        (
            "dns ttl propagation",
            "DNS changes propagate as cached records expire according to their TTL.",
        ),
        (
            "firewall port 443",
            "Open TCP port 443 in the firewall to allow HTTPS traffic to the service.",
        ),
    ],
    "compute": [
        (
            "instance out of memory",
            "An instance that runs out of memory is restarted; pick a larger machine type.",
        ),
        (
            "autoscaling cpu target",
            "Autoscaling adds instances when average CPU utilisation stays above the target.",
        ),
        (
            "spot instance interruption",
            "Spot instances can be interrupted with a two-minute warning when capacity is needed.",
        ),
        (
            "ssh key rotation",
            "Rotate SSH keys by adding the new public key before removing the old one.",
        ),
    ],
}


def save_shallow_copy(model, path: Path, layers: int = 2) -> Path:
    """Save a copy of a sentence-transformers BERT model keeping only its first ``layers`` layers; return ``path``.

    The migration tests' "old model": real weights whose vectors differ from the
    full model's, at a fraction of its encoding time.
    """
    import copy

    old = copy.deepcopy(model)
    encoder = old[0].auto_model.encoder
    encoder.layer = encoder.layer[:layers]
    old[0].auto_model.config.num_hidden_layers = layers
    old.save(str(path))
    return path


def build_mini_dataset() -> BeirDataset:
    """Twenty documents in five families, one query each, plus distractor documents."""
    corpus: dict[str, Document] = {}
    queries: dict[str, Query] = {}
    qrels_by_family: dict[str, dict[str, dict[str, int]]] = {}
    n = 0
    for family, items in TOPICS.items():
        for query_text, doc_text in items:
            n += 1
            did, qid = f"d{n:03d}", f"q{n:03d}"
            corpus[did] = Document(id=did, title=query_text.title(), text=doc_text)
            queries[qid] = Query(id=qid, text=query_text, metadata={"family": family})
            qrels_by_family.setdefault(family, {})[qid] = {did: 1}
    for i in range(10):
        did = f"x{i:03d}"
        corpus[did] = Document(
            id=did,
            text=f"Unrelated release note number {i} about the colour of the dashboard theme.",
        )
    splits = {"train": ["auth", "billing"], "dev": ["storage"], "test": ["network", "compute"]}
    qrels = {
        split: {qid: rel for fam in fams for qid, rel in qrels_by_family[fam].items()} for split, fams in splits.items()
    }
    return BeirDataset(corpus=corpus, queries=queries, qrels=qrels)


#: Training settings small enough for a few CPU steps on the mini BEIR folder.
TINY_TRAIN = {
    "batch_size": 4,
    "max_seq_length": 32,
    "eval_steps": 2,
    "save_steps": 2,
    "eval_max_corpus": 30,
    "learning_rate": 5e-4,
    "early_stopping_patience": None,
}


@pytest.fixture()
def mini_beir(tmp_path: Path) -> Path:
    """A valid BEIR folder with train/dev/test splits (families do not cross splits)."""
    return write_beir(build_mini_dataset(), tmp_path / "mini")


@pytest.fixture(scope="session")
def minilm():
    """The packaged all-MiniLM-L6-v2 bi-encoder, loaded once per test session."""
    from domainfit.core.models import load_bi_encoder

    return load_bi_encoder()


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory):
    """A cross-encoder built from the packaged MiniLM weights with a fresh 1-label head, saved as safetensors."""
    from sentence_transformers import CrossEncoder

    from domainfit.core.models import resolve_model

    folder = tmp_path_factory.mktemp("ce") / "tiny-ce"
    model = CrossEncoder(str(resolve_model("all-MiniLM-L6-v2").path), num_labels=1, device="cpu")
    model.save(str(folder))
    return folder
