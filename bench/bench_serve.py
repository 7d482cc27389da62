"""Benchmark: the search service under load on loopback, against the same searches in process.

Builds a LanceDB index of the bundled demo corpus (``--docs`` documents) with the
packaged MiniLM in a temporary workspace, then, on the same ``--queries`` demo
queries:

1. ``domainfit serve`` started as its own process on a free 127.0.0.1 port
   (loopback only, never another address);
2. one query at a time, interleaved so both see the same machine load: in
   process (encode + backend search, what ``/search`` does, and the backend
   search alone), then the same query over HTTP with one client: p50 / p99, and
   the HTTP overhead as service p50 / in-process p50;
3. the load test: ``--clients`` concurrent clients (threads, one keep-alive
   connection each) cycling through the queries for ``--seconds`` seconds or
   ``--max-requests`` requests, whichever comes first (it stops by itself):
   requests/s, p50 / p99, errors (any status but 200, or a transport error).

The client runs on the same machine as the server, so both share its cores.
Results go to ``bench/results/serve.json`` (``serve-<mode>.json`` for bm25 and
hybrid) and a table on stdout.

Usage: python bench/bench_serve.py [--docs 2209] [--queries 200] [--clients 8] [--seconds 30]
       [--max-requests 100000] [--mode dense|bm25|hybrid]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

RESULTS = Path(__file__).parent / "results" / "serve.json"
CLI = str(Path(sys.executable).parent / "domainfit")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ms(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


def build(workspace: Path, n_docs: int) -> tuple[list, object]:
    """Index the first ``n_docs`` demo documents; return them and the encoder."""
    from domainfit.core.models import DEFAULT_MODEL, load_bi_encoder
    from domainfit.core.workspace import Workspace
    from domainfit.data.demo import demo_path
    from domainfit.index.backend import ServingPointer, open_backend, write_pointer
    from domainfit.index.corpus import read_index_corpus
    from domainfit.serve.encoder import SentenceTransformerEncoder

    Workspace(workspace).ensure()
    docs = read_index_corpus(Path(demo_path()) / "corpus.jsonl")[:n_docs]
    encoder = SentenceTransformerEncoder(load_bi_encoder(DEFAULT_MODEL), DEFAULT_MODEL)
    start = time.perf_counter()
    vectors = encoder.encode([d.embed_text() for d in docs])
    print(f"encoded {len(docs)} documents in {time.perf_counter() - start:.1f}s", flush=True)
    folder = workspace / "index"
    store = open_backend(folder, "demo")
    try:
        store.upsert(docs, {"base": vectors})
        store.optimize()
        version = store.create_tag("prod")
    finally:
        store.close()
    write_pointer(folder, ServingPointer("lancedb", "demo", "base", vectors.shape[1], DEFAULT_MODEL, "prod", version))
    return docs, encoder


def demo_queries(n: int) -> list[str]:
    from domainfit.data.demo import demo_path

    lines = (Path(demo_path()) / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line.strip()][:n]


def start_server(workspace: Path, port: int) -> subprocess.Popen:
    cmd = [CLI, "serve", "--workspace", str(workspace), "--host", "127.0.0.1", "--port", str(port), "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "DOMAINFIT_SERVE_TOKEN"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 900
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                if client.get("/health").status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("the server did not come up in 15 minutes")
            time.sleep(0.5)


def paired(folder: Path, encoder, base: str, queries: list[str], mode: str) -> tuple[dict, dict]:
    """Each query in process (encode + backend search, and the search alone) and then over HTTP, interleaved.

    Interleaving puts both under the same machine load, which on a shared
    machine moves more than the difference being measured. Two passes; the
    second is measured.
    """
    from domainfit.index.backend import SearchQuery, open_index

    store, _ = open_index(folder)
    full, search_only, http, errors = [], [], [], 0
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for i, text in enumerate(queries * 2):
                t0 = time.perf_counter()
                vector = encoder.encode([text])[0].tolist() if mode != "bm25" else None
                t1 = time.perf_counter()
                store.search(SearchQuery(text=text, vector=vector, mode=mode, k=10, version="base"))
                t2 = time.perf_counter()
                response = client.post("/search", json={"query": text, "k": 10, "mode": mode})
                t3 = time.perf_counter()
                if i >= len(queries):
                    full.append(t2 - t0)
                    search_only.append(t2 - t1)
                    http.append(t3 - t2)
                    errors += response.status_code != 200
    finally:
        store.close()
    local = {
        "encode_and_search_p50_ms": _ms(full, 50),
        "encode_and_search_p99_ms": _ms(full, 99),
        "search_only_p50_ms": _ms(search_only, 50),
        "search_only_p99_ms": _ms(search_only, 99),
    }
    single = {"p50_ms": _ms(http, 50), "p99_ms": _ms(http, 99), "errors": errors, "requests": len(http)}
    return local, single


def load(base: str, queries: list[str], mode: str, clients: int, seconds: float, max_requests: int) -> dict:
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = [0]
    stop_at = time.monotonic() + seconds

    def take() -> int | None:
        with lock:
            if issued[0] >= max_requests or time.monotonic() >= stop_at:
                return None
            issued[0] += 1
            return issued[0]

    def client_loop(offset: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            while (n := take()) is not None:
                text = queries[(n + offset) % len(queries)]
                t0 = time.perf_counter()
                try:
                    response = client.post("/search", json={"query": text, "k": 10, "mode": mode})
                    ok = response.status_code == 200
                    why = f"status {response.status_code}"
                except httpx.HTTPError as exc:
                    ok, why = False, type(exc).__name__
                took = time.perf_counter() - t0
                with lock:
                    latencies.append(took)
                    if not ok:
                        errors.append(why)

    threads = [threading.Thread(target=client_loop, args=(i * 7,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "clients": clients,
        "seconds": elapsed,
        "requests": len(latencies),
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": _ms(latencies, 50),
        "p99_ms": _ms(latencies, 99),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=2209)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-requests", type=int, default=100_000)
    parser.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="dense")
    args = parser.parse_args()
    from domainfit.core.progress import set_quiet

    set_quiet(True)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        workspace = Path(tmp) / "ws"
        docs, encoder = build(workspace, args.docs)
        queries = demo_queries(args.queries)
        port = _free_port()
        proc = start_server(workspace, port)
        base = f"http://127.0.0.1:{port}"
        try:
            local, single = paired(workspace / "index", encoder, base, queries, args.mode)
            print(f"in process: {local}\none client: {single}", flush=True)
            loaded = load(base, queries, args.mode, args.clients, args.seconds, args.max_requests)
            print(f"load: {loaded}", flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=120)
    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": vars(args) | {"documents": len(docs), "queries_used": len(queries)},
        "in_process": local,
        "service_one_client": single,
        "load": loaded,
        "http_overhead_ratio_p50": single["p50_ms"] / local["encode_and_search_p50_ms"],
        "load_p50_over_in_process_p50": loaded["p50_ms"] / local["encode_and_search_p50_ms"],
        "note": "client and server share the machine's cores; the machine was shared with other jobs",
    }
    out = RESULTS if args.mode == "dense" else RESULTS.with_name(f"serve-{args.mode}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'':32}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'in process: encode + search':32}{local['encode_and_search_p50_ms']:>10.2f}"
          f"{local['encode_and_search_p99_ms']:>10.2f}")  # fmt: skip
    print(f"{'in process: search only':32}{local['search_only_p50_ms']:>10.2f}{local['search_only_p99_ms']:>10.2f}")
    print(f"{'service, one client':32}{single['p50_ms']:>10.2f}{single['p99_ms']:>10.2f}")
    print(f"{f'service, {args.clients} clients':32}{loaded['p50_ms']:>10.2f}{loaded['p99_ms']:>10.2f}")
    print(f"requests/s {loaded['requests_per_second']:.1f}, requests {loaded['requests']}, errors {loaded['errors']}, "
          f"HTTP overhead (p50 ratio) {result['http_overhead_ratio_p50']:.2f}")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
