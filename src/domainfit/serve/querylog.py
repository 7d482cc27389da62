"""The optional query log: one JSON line per answered search, written by a background thread.

The request thread only puts a small dict on a queue (no disk I/O, no JSON
encoding on the request path); one writer thread encodes and appends the lines
and flushes after each burst, so a reader (the monitoring stage) sees every
search within moments. `QueryLog.close` drains the queue (the service calls it
on shutdown). The file is opened for appending and never truncated: several
runs of the service append to the same log.

Format (JSON Lines, UTF-8, one object per line, keys in this order)::

    {"format_version": 1,
     "time": "2026-12-01T17:45:03.123456Z",   # UTC, when the search was answered
     "query": "reset password link",           # the query text as received
     "mode": "hybrid",                         # dense | bm25 | hybrid
     "version": "minilm-base",                 # model version searched
     "k": 10,                                  # results asked for
     "min_score": 0.41,                        # score floor applied (null: none)
     "filters": {"lang": "en"},                # metadata filters (null: none)
     "ids": ["d2", "d7"],                      # returned document ids, best first
     "scores": [0.83, 0.61],                   # their scores (same order)
     "latency_ms": 12.4}                       # time spent answering, in ms

A search that went through a query-side bridge (``serve --bridge``) also has
``"bridge": "migrate/bridge/bridge.npz"`` (the map), after ``latency_ms``.

A reader should skip a last line that does not parse (a line being written when
the service was killed) and ignore keys it does not know.
"""

from __future__ import annotations

import json
import queue
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

#: Version of the line format above.
QUERY_LOG_FORMAT = 1

_STOP = object()


def utc_now() -> str:
    """Return the current UTC time in ISO 8601 with microseconds and a ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class QueryLog:
    """Append search records to a JSONL file from a writer thread.

    Inputs: the log's path (its folder is created). Use `record` on the request
    path and `close` once at shutdown. A write error stops the log (counted in
    `errors`) and never fails a request.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO = self.path.open("a", encoding="utf-8")
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.errors = 0
        self.written = 0
        self._thread = threading.Thread(target=self._write, name="domainfit-query-log", daemon=True)
        self._thread.start()

    def record(
        self,
        *,
        query: str,
        mode: str,
        version: str,
        k: int,
        min_score: float | None,
        filters: dict[str, Any] | None,
        ids: list[str],
        scores: list[float],
        latency_ms: float,
        bridge: str | None = None,
    ) -> None:
        """Queue one search record (cheap: no I/O on the caller's thread); ``bridge``: the map it went through."""
        extra = {"bridge": bridge} if bridge is not None else {}
        self._queue.put(
            {
                "format_version": QUERY_LOG_FORMAT,
                "time": utc_now(),
                "query": query,
                "mode": mode,
                "version": version,
                "k": k,
                "min_score": min_score,
                "filters": filters,
                "ids": ids,
                "scores": scores,
                "latency_ms": round(latency_ms, 3),
                **extra,
            }
        )

    def _write(self) -> None:
        """Writer loop: block for a record, write it and whatever else is queued, flush; stop at the sentinel."""
        while True:
            item = self._queue.get()
            stop = item is _STOP
            lines = [] if stop else [item]
            while not stop:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                else:
                    lines.append(nxt)
            try:
                if lines:
                    self._handle.write("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines))
                    self._handle.flush()
                    self.written += len(lines)
            except (OSError, ValueError, TypeError):
                self.errors += len(lines)
            if stop:
                return

    def close(self) -> None:
        """Write every queued record, stop the writer and close the file (idempotent)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()
        if not self._handle.closed:
            self._handle.close()
