"""CPU training throughput under the three `ocr train --allocator` choices, side by side in one run: glibc as it
comes, glibc keeping freed memory, and jemalloc without decay (what `ocr train` uses when it is installed:
`apt-get install libjemalloc2`). Each runs `ocr train` from scratch for the same steps on the same data in its
own process; reports images/s, minor page faults per step, kernel CPU share and peak resident memory.
Writes benchmarks/results/allocator.md.

    python benchmarks/bench_allocator.py --train data/synth/default_s81.lmdb --train data/synth/document_s82.lmdb
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch
from machine import cpu_name, load_average  # noqa: E402  (benchmarks/machine.py)

from crnn_ocr.train.allocator import find_jemalloc

REPO = Path(__file__).resolve().parent.parent


def variants() -> list[tuple[str, str]]:
    found = [("glibc as it comes", "glibc"), ("glibc keeping freed memory", "glibc-keep")]
    if find_jemalloc():
        found.append(("jemalloc, no decay (the default when installed)", "jemalloc"))
    return found


def run_training(allocator: str, train: list[str], steps: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(REPO / "cli.py"), "train", "--out", out, "--steps", str(steps), "--threads",
               str(threads), "--arch", "crnn_s", "--vocab", "default", "--val-every", str(steps * 10), "--fresh",
               "--quiet", "--device", "cpu", "--seed", "0", "--allocator", allocator]
        for source in train:
            cmd += ["--train", source]
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            raise SystemExit(f"training failed: {' '.join(cmd)}")
        with open(Path(out) / "log.csv") as f:
            rows = list(csv.DictReader(f))[1:]  # the first rows include start-up
    return {"images_per_s": sum(float(r["images_per_s"]) for r in rows) / len(rows),
            "faults_per_step": usage.ru_minflt / steps,
            "system_share": usage.ru_stime / (usage.ru_utime + usage.ru_stime),
            "peak_rss_gib": usage.ru_maxrss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="append", required=True, help="Training source (repeatable).")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "allocator.md"))
    args = parser.parse_args()
    load_before = load_average()
    rows = []
    for name, allocator in variants():
        result = run_training(allocator, args.train, args.steps, args.threads)
        rows.append((name, result))
        print(name, {k: round(v, 3) for k, v in result.items()}, flush=True)
    sources = " ".join(f"--train {s}" for s in args.train)
    lines = [
        "# CPU training throughput by memory allocator",
        "",
        f"`python benchmarks/bench_allocator.py {sources} --steps {args.steps} --threads {args.threads}` on "
        f"{cpu_name()} ({os.cpu_count()} cores, torch {torch.__version__}, load average before: {load_before}), "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. crnn_s from scratch, batch 64, {args.steps} steps "
        "each in its own process; images/s is the mean of the logged rates after the first; page faults, "
        "kernel share and peak RSS from the process's own resource usage (wait4).",
        "",
        "| allocator | images/s | minor page faults per step | kernel share of CPU time | peak RSS (GiB) |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {n} | {r['images_per_s']:.1f} | {r['faults_per_step']:,.0f} | {100 * r['system_share']:.0f}% | "
              f"{r['peak_rss_gib']:.2f} |" for n, r in rows]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
