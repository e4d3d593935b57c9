"""Ray Data beside `ocr recognize --workers N`: throughput on the same word crops, and the memory of one actor.

Each row is one run of a whole command, timed from outside (Python and Ray start-up, model loading in every
worker or actor included): `ocr recognize DIR --workers N --threads 1 --json` and `examples/ray_bulk.py DIR OUT
--concurrency N` (a fresh local Ray instance each time). For Ray, also the seconds of the job alone
(`read_folder_to_parquet`, after `ray.init`), and the callable alone (`OcrPredictor` in this process, no Ray).
The texts of every run are checked against `--workers 1`. Then one actor's resident memory (VmRSS, VmHWM) after
reading crops, a receipt page (the page verifier loads then) and a photo (the text detector loads then). Writes
results/ray.md.

    python benchmarks/bench_ray.py                       # 1000 IIIT5K crops from ../shared/eval, N = 1, 2
    python benchmarks/bench_ray.py --crops 200 --max-n 1  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def crops_folder(eval_dir: Path, count: int, into: Path) -> int:
    """`count` IIIT5K test crops copied (numbered) into `into`; rendered words when ../shared/eval is absent."""
    into.mkdir()
    files = sorted((eval_dir / "iiit5k_test").rglob("*.png"))[:count]
    for k, f in enumerate(files):
        shutil.copy(f, into / f"{k:05d}.png")
    if not files:  # no evaluation set here: render words with the bundled font
        from PIL import Image, ImageDraw, ImageFont

        font = ImageFont.truetype(str(REPO / "data" / "fonts" / "DejaVuSans.ttf"), 36)
        words = (REPO / "data" / "words" / "en.txt").read_text(encoding="utf-8").split()[:count]
        for k, word in enumerate(words):
            image = Image.new("L", (30 + int(font.getlength(word)), 60), 255)
            ImageDraw.Draw(image).text((15, 8), word, font=font, fill=0)
            image.save(into / f"{k:05d}.png")
        files = words
    return len(files)


def texts_from_cli(stdout: str) -> dict[str, str]:
    return {Path(r["path"]).name: r["text"] for r in map(json.loads, stdout.splitlines()) if "text" in r}


def texts_from_parquet(folder: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    return {Path(r["path"]).name: r["text"] for r in pq.read_table(folder, columns=["path", "text"]).to_pylist()}


def in_process(crops: Path, batch_size: int, reference: dict) -> tuple:
    """The callable alone, no Ray: `OcrPredictor` built and called here on batches of the crops' bytes."""
    import numpy as np

    from crnn_ocr.bulk.ray_data import OcrPredictor

    files = sorted(crops.iterdir())
    start = time.perf_counter()
    predictor = OcrPredictor()
    texts = {}
    for k in range(0, len(files), batch_size):
        part = files[k:k + batch_size]
        table = predictor({"bytes": np.array([f.read_bytes() for f in part], dtype=object),
                           "path": np.array([str(f) for f in part])})
        texts.update((Path(p).name, t) for p, t in zip(table.column("path").to_pylist(), table.column("text").to_pylist()))
    wall = time.perf_counter() - start
    return ("`OcrPredictor` called in one process, no Ray (the callable alone)", 1, wall, None, texts == reference)


def actor_memory(eval_dir: Path, crops: Path) -> list[tuple[str, int, int]]:
    """(after what, VmRSS MiB, VmHWM MiB) of one Ray actor holding an OcrPredictor."""
    import numpy as np
    import ray

    from crnn_ocr.bulk.ray_data import OcrPredictor

    def status() -> tuple[int, int]:
        fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
        return tuple(int(fields[k].split()[0]) // 1024 for k in ("VmRSS", "VmHWM"))

    @ray.remote(num_cpus=1)
    class Probe:
        def __init__(self):
            self.before = status()
            self.predictor = OcrPredictor()
            self.loaded = status()

        def start(self):
            return self.before, self.loaded

        def read(self, payloads):
            table = self.predictor({"bytes": np.array(payloads, dtype=object)})
            return status(), table.column("error").null_count

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        probe = Probe.remote()
        before, loaded = ray.get(probe.start.remote())
        rows = [("an idle Ray worker process (before the models)", *before), ("models loaded (OcrPredictor())", *loaded)]
        crop_bytes = [p.read_bytes() for p in sorted(crops.iterdir())[:256]]
        for what, payloads in (("256 crops read (batch of 256)", crop_bytes),
                               ("a receipt page read (the page verifier loads)",
                                [p.read_bytes() for p in sorted((eval_dir / "sroie_pages" / "images").glob("*.jpg"))[:1]]),
                               ("a scene photo read (the text detector loads)",
                                [p.read_bytes() for p in sorted((eval_dir / "scenes" / "msra_td500_test").rglob("*.jpg"))[:1]])):
            if payloads:
                (rss, hwm), _ = ray.get(probe.read.remote(payloads))
                rows.append((what, rss, hwm))
    finally:
        ray.shutdown()
    return rows


def main(argv: list[str] | None = None) -> int:
    from benchmarks.machine import cpu_name, load_average

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", default=str(REPO.parent / "shared" / "eval"))
    parser.add_argument("--crops", type=int, default=1000)
    parser.add_argument("--max-n", type=int, default=2, help="workers / actors from 1 to this")
    parser.add_argument("--batch-size", type=int, default=64, help="files per actor call (Ray)")
    parser.add_argument("--note", default="", help="a line about the machine's state, written under the table")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ray.md"))
    args = parser.parse_args(argv)
    eval_dir = Path(args.eval)
    load_before = load_average()
    rows, reference = [], None
    with tempfile.TemporaryDirectory() as tmp:
        crops = Path(tmp) / "crops"
        count = crops_folder(eval_dir, args.crops, crops)
        source = "iiit5k_test" if (eval_dir / "iiit5k_test").is_dir() else "rendered words"
        for n in range(1, args.max_n + 1):
            start = time.perf_counter()
            run = subprocess.run([sys.executable, str(REPO / "cli.py"), "recognize", str(crops), "--workers", str(n),
                                  "--threads", "1", "--json", "-q"], capture_output=True, text=True, cwd=REPO)
            wall = time.perf_counter() - start
            texts = texts_from_cli(run.stdout)
            reference = reference or texts
            rows.append((f"`ocr recognize --workers {n}`", n, wall, None, texts == reference and len(texts) == count))
        for n in range(1, args.max_n + 1):
            out = Path(tmp) / f"ray{n}"
            env = {**os.environ, "RAY_DISABLE_USAGE_STATS": "1"}
            start = time.perf_counter()
            run = subprocess.run([sys.executable, str(REPO / "examples" / "ray_bulk.py"), str(crops), str(out),
                                  "--concurrency", str(n), "--batch-size", str(args.batch_size)],
                                 capture_output=True, text=True, cwd=REPO, env=env)
            wall = time.perf_counter() - start
            found = re.search(r"(\d+) files, (\d+) errors, ([\d.]+) s", run.stdout)
            job = float(found.group(3)) if found else None
            texts = texts_from_parquet(out) if out.exists() else {}
            rows.append((f"Ray Data, `examples/ray_bulk.py --concurrency {n}`", n, wall, job, texts == reference))
        rows.append(in_process(crops, args.batch_size, reference))
        memory = actor_memory(eval_dir, crops)
    given = list(argv if argv is not None else sys.argv[1:])
    if "--note" in given:  # the note is written under the table, not in the command
        given[given.index("--note") + 1] = "..."
    command = f"python benchmarks/bench_ray.py {' '.join(given)}".strip()
    lines = ["# Ray Data beside `ocr recognize --workers N`", "",
             f"`{command}` on {cpu_name()} ({os.cpu_count()} cores, `nproc` {len(os.sched_getaffinity(0))}; load "
             f"average before: {load_before}, after: {load_average()}). {count} word crops ({source}). Wall time of the "
             "whole command, start-up and model loading in every worker or actor included; for Ray also the job alone "
             "(after `ray.init`: actors started, files read, Parquet written).", ""]
    if args.note:
        lines += [args.note, ""]
    lines += ["| how | processes | wall s | crops / s | Ray job s | crops / s (job) | texts as `--workers 1` |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    for how, n, wall, job, same in rows:
        job_cells = f"{job:.1f} | {count / job:.0f}" if job else "- | -"
        lines.append(f"| {how} | {n} | {wall:.1f} | {count / wall:.0f} | {job_cells} | {'yes' if same else 'NO'} |")
    lines += ["", "Memory of one actor (`OcrPredictor` with the defaults: one thread, shipped models), from its "
              "/proc/self/status:", "", "| after | VmRSS MiB | VmHWM (peak) MiB |", "| --- | --- | --- |"]
    lines += [f"| {what} | {rss} | {hwm} |" for what, rss, hwm in memory]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
