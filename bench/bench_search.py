"""Benchmark: exact top-10 search over 1M 384-d vectors, against numpy brute force and the machine's floor.

Data: random unit vectors (seeded), 1,000,000 documents and 1,000 queries of
384 float32 dimensions. Three configurations, each timed through domainfit's
stores (`domainfit.compress.stores`) and through a plain numpy brute force in
the same run, for a batch of every query and for single queries (a sample):

* float32 – FAISS ``IndexFlatIP``;
* int8 – sentence-transformers int8 codes (ranges calibrated on the documents),
  float query · decoded codes; FAISS 8-bit scalar quantizer for single queries,
  blocked decode + BLAS for batches;
* binary+rescore – FAISS ``IndexBinaryFlat`` Hamming top ``k × oversample``,
  rescored with float query · int8 documents.

The physical floor is measured on the same machine: memory bandwidth (the best
of a threaded ``np.copyto`` and a threaded sum over a 1 GiB array) and the peak
float32 rate (a large BLAS matrix product). A configuration's floor is the
larger of bytes scanned / bandwidth and operations / peak rate; the ratio
measured / floor says how close each implementation comes (1.0 = at the floor).
Binary operations (XOR + popcount per 64-bit word) are counted at the float32
peak rate, an approximation. Peak memory is the rise of the process's peak
resident set (``VmHWM``, reset before each step) over the resident set before it.

Results go to ``bench/results/search.json`` and a table on stdout.

Usage: python bench/bench_search.py [--n 1000000] [--dim 384] [--queries 1000] [--k 10] [--single 20]
       [--oversample 4] [--threads 1 (0 = every core)]

With ``--threads 1`` (the default) everything, the floor included, is per core:
on a machine shared with other work, more threads mostly measure waiting.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

GIB = 1 << 30


# --- measurement helpers ----------------------------------------------------


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def measured(fn: Callable[[], object]) -> tuple[float, int, object]:
    """Run ``fn``; return (seconds, peak resident bytes above the start, result)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM")
    return seconds, max(0, peak - before) * 1024, out


def single_query_ms(search: Callable[[np.ndarray], object], queries: np.ndarray) -> dict:
    """Time each query alone (after one warm-up); p50/p95 in milliseconds."""
    search(queries[:1])
    times = []
    for row in range(queries.shape[0]):
        start = time.perf_counter()
        search(queries[row : row + 1])
        times.append(time.perf_counter() - start)
    return {
        "p50_ms": round(statistics.median(times) * 1000, 3),
        "p95_ms": round(float(np.percentile(times, 95)) * 1000, 3),
        "queries": len(times),
    }


def random_unit(n: int, d: int, seed: int, chunk: int = 1 << 17) -> np.ndarray:
    """``n`` random unit vectors of ``d`` float32 dimensions, generated chunk by chunk."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + block.shape[0]] = block
    return out


# --- the machine's floor ----------------------------------------------------


def _threaded(threads: int, n_items: int, work: Callable[[int, int], None]) -> None:
    """Split ``range(n_items)`` across threads (numpy releases the GIL in these loops)."""
    bounds = np.linspace(0, n_items, threads + 1).astype(int)
    pool = [threading.Thread(target=work, args=(int(a), int(b))) for a, b in itertools.pairwise(bounds)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()


def _bandwidths(threads: int, repeats: int) -> tuple[float, float]:
    """Best copy (read + write bytes) and sum (read bytes) bandwidth over a 1 GiB float32 array, bytes/s."""
    src = np.ones(GIB // 4, dtype=np.float32)
    dst = np.empty_like(src)
    copies, sums = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        _threaded(threads, src.size, lambda a, b: np.copyto(dst[a:b], src[a:b]))
        copies.append(2 * src.nbytes / (time.perf_counter() - start))
        start = time.perf_counter()
        _threaded(threads, src.size, lambda a, b: src[a:b].sum())
        sums.append(src.nbytes / (time.perf_counter() - start))
    return max(copies), max(sums)


def _peak_flops(repeats: int, size: int = 3072) -> float:
    """Best float32 rate of a size x size matrix product, FLOP/s."""
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    a @ a  # warm-up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        rates.append(2 * size**3 / (time.perf_counter() - start))
    return max(rates)


def machine_floor(threads: int, repeats: int = 3) -> dict:
    """Measured memory bandwidth (copy and sum) and peak float32 matrix-product rate."""
    copy, total = _bandwidths(threads, repeats)
    return {
        "copy_bandwidth_gb_s": round(copy / 1e9, 2),
        "sum_bandwidth_gb_s": round(total / 1e9, 2),
        "bandwidth_gb_s": round(max(copy, total) / 1e9, 2),
        "peak_gflops": round(_peak_flops(repeats) / 1e9, 1),
        "threads": threads,
    }


def floor_seconds(bytes_scanned: float, operations: float, floor: dict) -> dict:
    """The floor of one search: max(bytes / bandwidth, operations / peak rate), and which bound it is."""
    memory = bytes_scanned / (floor["bandwidth_gb_s"] * 1e9)
    compute = operations / (floor["peak_gflops"] * 1e9)
    return {
        "seconds": max(memory, compute),
        "bound": "bandwidth" if memory >= compute else "arithmetic",
        "bytes": bytes_scanned,
        "operations": operations,
    }


# --- numpy brute force --------------------------------------------------------


def _merge(best_ids, best_scores, ids, scores, k, largest=True):
    all_ids = np.concatenate([best_ids, ids], axis=1)
    all_scores = np.concatenate([best_scores, scores], axis=1)
    key = -all_scores if largest else all_scores
    keep = np.argpartition(key, k - 1, axis=1)[:, :k]
    return np.take_along_axis(all_ids, keep, axis=1), np.take_along_axis(all_scores, keep, axis=1)


def _finish(ids, scores, largest=True):
    order = np.argsort(-scores if largest else scores, axis=1, kind="stable")
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(scores, order, axis=1)


def numpy_topk(queries, n, k, score_block, block=1 << 14, largest=True):
    """Top-k over documents scored block by block by ``score_block(start, stop) -> (nq, stop - start)``."""
    nq = queries.shape[0]
    best_ids = np.empty((nq, 0), dtype=np.int64)
    best_scores = np.empty((nq, 0), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        sims = score_block(start, stop)
        key = -sims if largest else sims
        part = np.argpartition(key, k - 1, axis=1)[:, :k]
        best_ids, best_scores = _merge(
            best_ids, best_scores, part + start, np.take_along_axis(sims, part, axis=1), k, largest
        )
    return _finish(best_ids, best_scores, largest)


def numpy_float32(queries, docs, k):
    return numpy_topk(queries, docs.shape[0], k, lambda a, b: queries @ docs[a:b].T)


def numpy_int8(queries, codes, ranges, k):
    start, step = ranges[0], (ranges[1] - ranges[0]) / 255
    scaled = queries * step  # q·(start + (c + 128.5)·step) = (q·step)·c + a per-query constant
    offset = queries @ start + scaled.sum(axis=1) * 128.5
    return numpy_topk(
        queries, codes.shape[0], k, lambda a, b: scaled @ codes[a:b].astype(np.float32).T + offset[:, None]
    )


def numpy_binary_rescore(queries, words, codes, ranges, k, oversample, query_block=32):
    """Hamming top k·oversample over packed uint64 words, then float query · decoded int8 rescoring."""
    qwords = np.packbits(queries > 0, axis=1).view(np.uint64)
    m = k * oversample
    all_ids = []
    for qs in range(0, queries.shape[0], query_block):
        qw = qwords[qs : qs + query_block]

        def hamming(a, b, qw=qw):
            return np.bitwise_count(qw[:, None, :] ^ words[None, a:b, :]).sum(axis=2, dtype=np.int32)

        ids, _ = numpy_topk(qw, words.shape[0], m, hamming, block=1 << 14, largest=False)
        all_ids.append(ids)
    candidates = np.vstack(all_ids)
    start, step = ranges[0], (ranges[1] - ranges[0]) / 255
    decoded = start + (codes[candidates].astype(np.float32) + 128.5) * step
    scores = np.einsum("nd,nmd->nm", queries, decoded)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, order, axis=1), np.take_along_axis(scores, order, axis=1)


# --- the benchmark -------------------------------------------------------------


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean share of each row of ``b`` found in the same row of ``a``."""
    return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / len(y) for x, y in zip(a, b, strict=True)]))


def run_case(name, build_ours, numpy_for, queries, k, single, floors, exact_ids=None):
    """Build, batch-search and single-search one configuration, ours and numpy; compare with the floors.

    ``numpy_for(store)`` returns the numpy brute force (a function of the queries) over the same codes.
    Returns (store, record, numpy ids); when ``exact_ids`` is None the numpy ids are the exact reference.
    """
    build_s, build_mem, store = measured(build_ours)
    brute = numpy_for(store)
    batch_s, batch_mem, (ids, _) = measured(lambda: store.search(queries, k))
    np_s, np_mem, (np_ids, _) = measured(lambda: brute(queries))
    one = single_query_ms(lambda q: store.search(q, k), queries[:single])
    np_one = single_query_ms(brute, queries[:single])
    batch_floor, single_floor = floors
    record = {
        "config": name,
        "build_s": round(build_s, 3),
        "build_peak_mb": round(build_mem / 1e6, 1),
        "batch": {
            "queries": queries.shape[0],
            "domainfit_s": round(batch_s, 3),
            "numpy_s": round(np_s, 3),
            "domainfit_peak_mb": round(batch_mem / 1e6, 1),
            "numpy_peak_mb": round(np_mem / 1e6, 1),
            "floor_s": round(batch_floor["seconds"], 4),
            "floor_bound": batch_floor["bound"],
            "floor_bytes": batch_floor["bytes"],
            "floor_operations": batch_floor["operations"],
            "domainfit_over_floor": round(batch_s / batch_floor["seconds"], 2),
            "numpy_over_floor": round(np_s / batch_floor["seconds"], 2),
        },
        "single": {
            "domainfit": one,
            "numpy": np_one,
            "floor_ms": round(single_floor["seconds"] * 1000, 3),
            "floor_bound": single_floor["bound"],
            "floor_bytes": single_floor["bytes"],
            "floor_operations": single_floor["operations"],
            "domainfit_over_floor": round(one["p50_ms"] / (single_floor["seconds"] * 1000), 2),
            "numpy_over_floor": round(np_one["p50_ms"] / (single_floor["seconds"] * 1000), 2),
        },
        "agreement_domainfit_vs_numpy": round(overlap(ids, np_ids), 4),
        "recall_at_k_vs_float32_exact": round(overlap(ids, np_ids if exact_ids is None else exact_ids), 4),
    }
    return store, record, np_ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="documents")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1000, help="queries in the batch")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--single", type=int, default=20, help="queries timed one at a time (a sample)")
    parser.add_argument("--oversample", type=int, default=4)
    parser.add_argument(
        "--threads", type=int, default=1, help="FAISS, BLAS and floor threads (0 = every core; 1 is stable when shared)"
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "search.json")
    args = parser.parse_args()

    import faiss
    from threadpoolctl import threadpool_limits

    from domainfit.compress.quantize import load_quantizer
    from domainfit.compress.stores import BinaryStore, Float32Store, Int8Store, RescoredStore

    threads = args.threads or os.cpu_count() or 1
    faiss.omp_set_num_threads(threads)
    threadpool_limits(limits=threads)
    load_quantizer()
    n, d, k, nq = args.n, args.dim, args.k, args.queries
    print(f"measuring the floor ({threads} threads) ...", flush=True)
    floor = machine_floor(threads)
    print(f"  {floor}", flush=True)
    print(f"generating {n:,} x {d} documents and {nq} queries ...", flush=True)
    docs = random_unit(n, d, seed=1)
    queries = random_unit(nq, d, seed=2)
    flops_batch, flops_one = 2.0 * nq * n * d, 2.0 * n * d

    print("float32 ...", flush=True)
    f32_store, f32, exact_ids = run_case(
        "float32 (FAISS IndexFlatIP)",
        lambda: Float32Store(docs),
        lambda store: lambda q: numpy_float32(q, docs, k),
        queries,
        k,
        args.single,
        (floor_seconds(n * d * 4 + nq * d * 4, flops_batch, floor), floor_seconds(n * d * 4, flops_one, floor)),
    )
    del f32_store

    print("int8 ...", flush=True)
    int8_store, int8, _ = run_case(
        "int8 (ST codes; FAISS SQ8 single, BLAS batch)",
        lambda: Int8Store(docs),
        lambda store: lambda q: numpy_int8(q, store.codes, store.codec.ranges, k),
        queries,
        k,
        args.single,
        (floor_seconds(n * d + nq * d * 4, flops_batch, floor), floor_seconds(n * d, flops_one, floor)),
        exact_ids,
    )

    print("binary + int8 rescoring ...", flush=True)
    m = k * args.oversample
    words = d // 64
    _, binary, _ = run_case(
        f"binary + int8 rescore (FAISS IndexBinaryFlat, top {m})",
        lambda: RescoredStore(BinaryStore(docs), int8_store, args.oversample),
        lambda store: (
            lambda q: numpy_binary_rescore(
                q, store.base.codes.view(np.uint64), int8_store.codes, int8_store.codec.ranges, k, args.oversample
            )
        ),
        queries,
        k,
        args.single,
        (
            floor_seconds(n * d / 8 + nq * m * d, nq * n * words * 2 + 2.0 * nq * m * d, floor),
            floor_seconds(n * d / 8 + m * d, n * words * 2 + 2.0 * m * d, floor),
        ),
        exact_ids,
    )
    binary["note"] = "binary word operations (XOR + popcount) are counted at the float32 peak rate"

    result = {
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "faiss": faiss.__version__,
            "numpy": np.__version__,
        },
        "data": {"documents": n, "dim": d, "queries": nq, "k": k, "seed_docs": 1, "seed_queries": 2},
        "floor": floor,
        "cases": [f32, int8, binary],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    print(f"wrote {args.out}")


def print_table(result: dict) -> None:
    floor = result["floor"]
    print(
        f"\nfloor: bandwidth {floor['bandwidth_gb_s']} GB/s (copy {floor['copy_bandwidth_gb_s']}, "
        f"sum {floor['sum_bandwidth_gb_s']}), peak {floor['peak_gflops']} GFLOP/s, {floor['threads']} threads"
    )
    header = (
        f"{'configuration':48s} {'mode':7s} {'domainfit':>11s} {'numpy':>11s} {'floor':>10s} {'bound':>10s} "
        f"{'dfit/floor':>10s} {'np/floor':>9s} {'dfit MB':>8s} {'np MB':>8s}"
    )
    print(header)
    print("-" * len(header))
    for c in result["cases"]:
        b, s = c["batch"], c["single"]
        print(
            f"{c['config']:48s} {'batch':7s} {b['domainfit_s']:>10.2f}s {b['numpy_s']:>10.2f}s {b['floor_s']:>9.3f}s "
            f"{b['floor_bound']:>10s} {b['domainfit_over_floor']:>10.1f} {b['numpy_over_floor']:>9.1f} "
            f"{b['domainfit_peak_mb']:>8.0f} {b['numpy_peak_mb']:>8.0f}"
        )
        print(
            f"{'':48s} {'single':7s} {s['domainfit']['p50_ms']:>9.2f}ms {s['numpy']['p50_ms']:>9.2f}ms "
            f"{s['floor_ms']:>8.2f}ms {s['floor_bound']:>10s} {s['domainfit_over_floor']:>10.1f} "
            f"{s['numpy_over_floor']:>9.1f}"
        )
        print(
            f"{'':48s} build {c['build_s']:.2f}s ({c['build_peak_mb']:.0f} MB); "
            f"agreement with numpy {c['agreement_domainfit_vs_numpy']:.3f}; "
            f"recall@k vs float32 exact {c['recall_at_k_vs_float32_exact']:.3f}"
        )


if __name__ == "__main__":
    main()
