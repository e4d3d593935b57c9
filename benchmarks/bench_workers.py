"""All cores: `ocr recognize --workers N` throughput for N = 1 .. the usable cores, on whole receipts and on crops.

Wall-clock pages/s and crops/s of the whole command (model loading in every worker included), each run once per N
in one sitting, so the rows compare; outputs are checked to be identical across N. Writes results/workers.md.

    python benchmarks/bench_workers.py                         # sroie_pages and 1000 IIIT5K crops
    python benchmarks/bench_workers.py --crops 200 --pages 5   # a quick look
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    from benchmarks.machine import cpu_name, load_average
    from crnn_ocr.page.parallel import usable_cores

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", default=str(REPO.parent / "shared" / "eval"))
    parser.add_argument("--pages", type=int, default=0, help="receipt pages (0: all)")
    parser.add_argument("--crops", type=int, default=1000)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "workers.md"))
    args = parser.parse_args(argv)
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        sets = {}
        for name, source, limit in (("receipt pages (sroie_pages)", Path(args.eval) / "sroie_pages" / "images", args.pages),
                                    ("word crops (iiit5k_test)", Path(args.eval) / "iiit5k_test", args.crops)):
            files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".png"))
            files = files[:limit] if limit else files
            folder = Path(tmp) / name.split()[0]
            folder.mkdir()
            for k, f in enumerate(files):
                shutil.copy(f, folder / f"{k:05d}{f.suffix}")
            sets[name] = (folder, len(files))
        rows = []
        for name, (folder, count) in sets.items():
            reference = None
            for n in range(1, usable_cores() + 1):
                start = time.perf_counter()
                run = subprocess.run([sys.executable, str(REPO / "cli.py"), "recognize", str(folder), "--workers", str(n),
                                      "--threads", "1", "-q"], capture_output=True, text=True, cwd=REPO)
                wall = time.perf_counter() - start
                same = reference is None or run.stdout == reference
                reference = reference or run.stdout
                rows.append((name, count, n, wall, count / wall, same, run.returncode))
    command = f"python benchmarks/bench_workers.py {' '.join(argv or sys.argv[1:])}".strip()
    where = f"{cpu_name()} ({usable_cores()} usable cores; load average before: {load_before})"
    lines = ["# `ocr recognize --workers N`", "", f"`{command}` on {where}. Wall time of the whole command (start-up "
             "and model loading in every worker included).", "",
             "| inputs | count | workers | wall s | per second | output as with 1 worker |", "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {name} | {count} | {n} | {wall:.1f} | {rate:.1f} | {'yes' if same else 'NO'} |"
              for name, count, n, wall, rate, same, _ in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
