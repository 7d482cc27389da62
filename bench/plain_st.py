"""Baseline: the plain sentence-transformers fine-tuning script a user would write instead of domainfit.

What it does, and nothing more:

1. read a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/train.tsv`` and
   ``qrels/test.tsv``); a document is encoded as ``title + "\\n" + text``;
2. training pairs: every judged train (query, document) with relevance > 0, each
   with one BM25 hard negative (bm25s, English stop words and stemmer): the
   top-ranked document that is not relevant to the query;
3. fine-tune the base model (default: the packaged all-MiniLM-L6-v2) with
   ``MultipleNegativesRankingLoss``, ``max_seq_length`` 256, 1 epoch, learning rate
   2e-5, batch size 32, 10% warm-up, no-duplicates batches, fixed seed; save it;
4. evaluate the base and the fine-tuned model on the test split: exact search
   (normalised embeddings, dot product) over the whole corpus, NDCG@10 per query,
   the mean, and a paired t-test (scipy) fine-tuned vs base.

NDCG@10 is computed by `domainfit.evaluation.metrics` (ranx, trec_eval
conventions) so the numbers compare exactly with domainfit's; the model name is
resolved by `domainfit.core.models` so the packaged weights load offline. Nothing
else of domainfit is used. No hub access, no reporting integrations.

Usage::

    python bench/plain_st.py DATA --out OUT [--batch-size 32] [--epochs 1] [--max-steps N]
        [--max-train-queries N --max-test-queries N --max-docs N]   # small subsets, for smoke tests

Prints one JSON object: base and fine-tuned NDCG@10, lift, p-value, wall times
(BM25 mining, training, each evaluation), peak RSS; also written to ``OUT/result.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def read_beir(folder: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, dict[str, int]]]]:
    """Return ``(docs {id: title + text}, queries {id: text}, qrels {split: {qid: {did: score}}})``."""
    docs, queries = {}, {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            d = json.loads(line)
            docs[d["_id"]] = f"{d['title']}\n{d['text']}" if d.get("title") else d["text"]
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    qrels: dict[str, dict[str, dict[str, int]]] = {}
    for split in ("train", "test"):
        qrels[split] = {}
        with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                qrels[split].setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    return docs, queries, qrels


def bm25_negatives(docs: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> dict[str, str]:
    """Return ``{query id: id of its top-ranked BM25 document that is not relevant}``."""
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    doc_ids = list(docs)
    retriever = bm25s.BM25()
    corpus_tokens = bm25s.tokenize(list(docs.values()), stopwords="en", stemmer=stemmer, show_progress=False)
    retriever.index(corpus_tokens, show_progress=False)
    qids = list(qrels)
    k = min(len(doc_ids), 1 + max(len(judged) for judged in qrels.values()))
    tokens = bm25s.tokenize([queries[q] for q in qids], stopwords="en", stemmer=stemmer, show_progress=False)
    hits, _ = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
    negatives = {}
    for qid, row in zip(qids, hits, strict=True):
        for index in row:
            if qrels[qid].get(doc_ids[index], 0) <= 0:
                negatives[qid] = doc_ids[index]
                break
    return negatives


def train(
    model_path: str, docs: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, int]], out: Path, **opts
) -> tuple[float, float, int]:
    """Fine-tune and save to ``out/model``; return (mining seconds, training seconds, steps)."""
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    start = time.perf_counter()
    negatives = bm25_negatives(docs, queries, qrels)
    mined = time.perf_counter() - start
    rows = [
        (queries[qid], docs[did], docs[negatives[qid]])
        for qid, judged in qrels.items()
        for did, score in judged.items()
        if score > 0 and qid in negatives
    ]
    anchor, positive, negative = (list(column) for column in zip(*rows, strict=True))
    data = Dataset.from_dict({"anchor": anchor, "positive": positive, "negative": negative})
    model = SentenceTransformer(model_path, device="cpu")
    model.max_seq_length = opts["max_seq_length"]
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=opts["epochs"],
        max_steps=opts["max_steps"] or -1,
        per_device_train_batch_size=opts["batch_size"],
        learning_rate=opts["learning_rate"],
        warmup_steps=0.1,
        seed=opts["seed"],
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        logging_steps=50,
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(model)
    )
    with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its logs; stdout is for the result
        trainer.train()
    model.save(str(out / "model"))
    return mined, time.perf_counter() - start - mined, int(trainer.state.global_step)


def evaluate(model_path: str, docs: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, int]], **opts):
    """Return ``({query id: NDCG@10}, seconds)``: exact dot-product search of normalised embeddings."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from domainfit.evaluation.metrics import per_query

    start = time.perf_counter()
    model = SentenceTransformer(model_path, device="cpu")
    model.max_seq_length = opts["max_seq_length"]
    doc_ids, qids = list(docs), list(qrels)
    encode = {"batch_size": 64, "normalize_embeddings": True, "convert_to_numpy": True, "show_progress_bar": False}
    doc_emb = model.encode(list(docs.values()), **encode)
    query_emb = model.encode([queries[q] for q in qids], **encode)
    k = min(100, len(doc_ids))
    run = {}
    for lo in range(0, len(qids), 256):
        scores = query_emb[lo : lo + 256] @ doc_emb.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        for qid, row, idx in zip(qids[lo : lo + 256], scores, top, strict=True):
            run[qid] = {doc_ids[i]: float(row[i]) for i in idx}
    return per_query(qrels, run, ["ndcg@10"])["ndcg@10"], time.perf_counter() - start


def subsample(docs, queries, qrels, *, max_train: int | None, max_test: int | None, max_docs: int | None, seed: int):
    """Keep at most ``max_train``/``max_test`` queries (seeded choice) and ``max_docs`` documents.

    The documents judged for the kept queries are kept first, then random others; queries
    whose judged documents do not all fit are dropped. For smoke tests only.
    """
    rng = random.Random(seed)
    picked = {}
    for split, limit in (("train", max_train), ("test", max_test)):
        qids = sorted(qrels[split])
        rng.shuffle(qids)
        picked[split] = qids[:limit] if limit else qids
    keep: set[str] = set()
    for split in ("test", "train"):
        kept = []
        for qid in picked[split]:
            judged = set(qrels[split][qid])
            if max_docs is None or len(keep | judged) <= max_docs:
                keep |= judged
                kept.append(qid)
        picked[split] = kept
    others = sorted(set(docs) - keep)
    rng.shuffle(others)
    keep.update(others[: (max_docs - len(keep)) if max_docs else len(others)])
    docs = {did: text for did, text in docs.items() if did in keep}
    qrels = {split: {qid: qrels[split][qid] for qid in sorted(picked[split])} for split in ("train", "test")}
    return docs, queries, qrels


def run(data: Path, out: Path, *, model: str = DEFAULT_MODEL, **opts: Any) -> dict[str, Any]:
    """Fine-tune on ``data``'s train split, evaluate base and fine-tuned on its test split; return the result."""
    from scipy.stats import ttest_rel

    from domainfit.core.models import resolve_model

    started = time.perf_counter()
    docs, queries, qrels = read_beir(data)
    sizes = {k: opts.pop(k, None) for k in ("max_train", "max_test", "max_docs")}
    if any(sizes.values()):
        docs, queries, qrels = subsample(docs, queries, qrels, seed=opts["seed"], **sizes)
    base_path = str(resolve_model(model).path)
    out.mkdir(parents=True, exist_ok=True)
    mine_s, train_s, steps = train(base_path, docs, queries, qrels["train"], out, **opts)
    base, base_s = evaluate(base_path, docs, queries, qrels["test"], **opts)
    tuned, tuned_s = evaluate(str(out / "model"), docs, queries, qrels["test"], **opts)
    qids = sorted(base)
    diffs = [tuned[q] - base[q] for q in qids]
    p_value = float(ttest_rel([tuned[q] for q in qids], [base[q] for q in qids]).pvalue) if any(diffs) else 1.0
    result = {
        "data": str(data),
        "documents": len(docs),
        "train_queries": len(qrels["train"]),
        "test_queries": len(qids),
        "steps": steps,
        "base_ndcg@10": sum(base.values()) / len(qids),
        "tuned_ndcg@10": sum(tuned.values()) / len(qids),
        "lift": sum(diffs) / len(qids),
        "p_value": p_value,
        "seconds": {
            "mine_bm25": mine_s,
            "train": train_s,
            "eval_base": base_s,
            "eval_tuned": tuned_s,
            "total": time.perf_counter() - started,
        },
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "settings": {"model": model, **opts},
        "subsample": {k: v for k, v in sizes.items() if v},
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    per_query = {"base": base, "tuned": tuned}
    (out / "per_query.json").write_text(json.dumps(per_query, indent=1) + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the baseline and print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="BEIR folder with qrels/train.tsv and qrels/test.tsv")
    parser.add_argument("--out", type=Path, required=True, help="folder for the fine-tuned model and result.json")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="base model name or folder")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps (smoke tests)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-train-queries", dest="max_train", type=int, help="subsample (smoke tests)")
    parser.add_argument("--max-test-queries", dest="max_test", type=int, help="subsample (smoke tests)")
    parser.add_argument("--max-docs", dest="max_docs", type=int, help="subsample the corpus (smoke tests)")
    args = vars(parser.parse_args(argv))
    data, out, model = args.pop("data"), args.pop("out"), args.pop("model")
    print(json.dumps(run(data, out, model=model, **args), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
