"""Benchmark: the plan's estimate of every stage against the time it took, on ``domainfit run --demo``.

Runs ``domainfit run --demo`` (the bundled corpus and its sizing config, or
``--config``) into a fresh workspace in a child process, then reads
``<workspace>/plan/timings.json``: per stage, the estimate made before it ran
(the start plan for bench to mine, the plan after mine for recipe, the plan
from the recipe's measured pilots for train), the actual seconds and their
ratio. Target: every stage of at least five seconds within ±30% of its
estimate. Results go to ``bench/results/plan_demo.json``.

Usage::

    python bench/bench_plan.py [--work DIR] [--budget 15m] [--config FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The largest miss the acceptance allows, as a share of the estimate.
TOLERANCE = 0.30


def main() -> None:
    """Run the demo once and save each stage's estimate against its actual time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="keep the workspace here (default: a temporary folder)")
    parser.add_argument("--budget", help="pass --budget to domainfit run")
    parser.add_argument("--config", type=Path, help="a domainfit.toml instead of the demo's")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "plan_demo.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="domainfit-bench-plan-"))
    workspace = work / "demo-plan"
    if workspace.exists():
        sys.exit(f"{workspace} exists: give another --work (the benchmark needs a fresh workspace)")
    argv = [str(Path(sys.executable).with_name("domainfit")), "run", "--demo", "--workspace", str(workspace), "--quiet"]
    argv += ["--budget", args.budget] if args.budget else []
    argv += ["--config", str(args.config)] if args.config else []
    start = time.perf_counter()
    done = subprocess.run(argv, env={**os.environ, "NO_COLOR": "1"}, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"domainfit run failed with exit code {done.returncode}")
    timings: dict[str, Any] = json.loads((workspace / "plan" / "timings.json").read_text())
    compared = [row for row in timings["stages"] if row.get("ratio") is not None]
    within = [row for row in compared if abs(row["ratio"] - 1.0) <= TOLERANCE]
    payload = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": "domainfit run --demo" + (f" --budget {args.budget}" if args.budget else ""),
        "wall_seconds": round(seconds, 1),
        "estimate_seconds": timings["estimate_seconds"],
        "run_seconds": timings["seconds"],
        "stages": timings["stages"],
        "compared_stages": len(compared),
        "within_30_percent": len(within),
        "target_met": len(within) == len(compared),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    for row in timings["stages"]:
        ratio = "-" if row.get("ratio") is None else f"{row['ratio']:.2f}"
        print(
            f"{row['stage']:<10} {row['status']:<11} estimate {row['estimate']!s:>8} actual {row['seconds']:>7} {ratio}"
        )
    print(f"{len(within)} of {len(compared)} stages within ±30%; wrote {args.out}")


if __name__ == "__main__":
    main()
