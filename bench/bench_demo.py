"""Benchmark: wall time and peak memory of the whole demo loop (what ``make demo`` runs).

Runs ``domainfit run --demo`` into a fresh temporary workspace in a child
process and records its wall time, the peak resident set size of the child
(``getrusage(RUSAGE_CHILDREN)``, Linux reports KiB) and the stage timings and
headline numbers from the report summary. Results go to
``bench/results/demo.json``.

Usage: python bench/bench_demo.py [--workspace DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    """Run the demo once, print and save time and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="keep the workspace here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "demo.json")
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "domainfit")
    with tempfile.TemporaryDirectory() as tmp:
        workspace = args.workspace or Path(tmp) / "demo-work"
        start = time.perf_counter()
        done = subprocess.run([cli, "run", "--demo", "--workspace", str(workspace), "--json"], capture_output=True)
        seconds = time.perf_counter() - start
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if done.returncode:
            sys.exit(f"domainfit run failed ({done.returncode}):\n{done.stderr.decode()[-3000:]}")
        summary = json.loads(done.stdout)
    result = {
        "command": "domainfit run --demo",
        "seconds": round(seconds, 1),
        "peak_rss_mib": round(peak_mib, 1),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "summary": summary,
    }
    print(f"domainfit run --demo: {seconds / 60:.1f} min, peak RSS {peak_mib:.0f} MiB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
