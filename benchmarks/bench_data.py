"""Data pipeline speed: rendering rate per core, LMDB read-and-decode rate, augmentation rate, and the share of
padding in training batches with and without aspect-ratio bucketing. Writes benchmarks/results/data.md.

    OMP_NUM_THREADS=1 python benchmarks/bench_data.py                 # full run (a few minutes on one core)
    python benchmarks/bench_data.py --quick                           # a smoke run
    python benchmarks/bench_data.py --lmdb data/synth/default.lmdb    # padding and reading on a real LMDB too

Rates are per process (one core). CPU seconds (time.process_time) are reported beside wall seconds, because
on a shared machine wall time also counts the time other processes held the core.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRDG_RATE = 363  # TextRecognitionDataGenerator's README: images/s on one thread


from machine import cpu_name, load_average  # noqa: E402  (benchmarks/machine.py)


def machine() -> dict:
    cpu = cpu_name()
    import cv2
    import lmdb
    import PIL

    load = load_average()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "opencv": cv2.__version__,
            "pillow": PIL.__version__, "lmdb": lmdb.__version__, "load": load,
            "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset")}


class Timer:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def bench_render(count: int, fonts, line_share: float, seed: int = 0):
    """Render `count` images in this process; returns rates and the encoded samples."""
    from crnn_ocr.datasets.synth import SynthGenerator
    from crnn_ocr.datasets.synth.render import encode_image
    from crnn_ocr.datasets.synth.text import LANGUAGES, word_list

    for lang in LANGUAGES:  # load the word lists before timing
        word_list(lang)
    gen = SynthGenerator(fonts, line_share=line_share)
    rng = random.Random(seed)
    for _ in range(100):  # warm up: first uses of fonts and glyph caches are slower
        gen.sample(rng)
    images, texts = [], []
    with Timer() as t_render:
        for _ in range(count):
            image, text = gen.sample(rng)
            images.append(image)
            texts.append(text)
    with Timer() as t_encode:
        encoded = [encode_image(im) for im in images]
    return {"count": count, "render": t_render, "encode": t_encode,
            "mean_width": float(np.mean([im.shape[1] for im in images])),
            "mean_height": float(np.mean([im.shape[0] for im in images])),
            "mean_chars": float(np.mean([len(t) for t in texts]))}, list(zip(encoded, texts, images))


def bench_read(path: Path, limit: int):
    from crnn_ocr.datasets.sources import open_source, release_env
    from crnn_ocr.image.io import read_image

    release_env(path)
    source = open_source(path)
    n = min(limit, len(source))
    with Timer() as t_read:
        blobs = [source.image_bytes(i) for i in range(n)]
        labels = [source.label(i) for i in range(n)]
    with Timer() as t_decode:
        for data in blobs:
            read_image(data)
    del labels
    return {"count": n, "read": t_read, "decode": t_decode, "mean_bytes": float(np.mean([len(b) for b in blobs]))}


def bench_augment(images: list, repeat: int = 1):
    from crnn_ocr.datasets.augment import augment

    rng = np.random.default_rng(0)
    with Timer() as t:
        for _ in range(repeat):
            for im in images:
                augment(im, rng)
    return {"count": len(images) * repeat, "time": t}


def padding_share(sizes: np.ndarray, batch_size: int, chunks: int, steps: int, height: int = 32) -> float:
    """Share of the batch tensor that is padding, over `steps` batches drawn by the training StepSampler."""
    from crnn_ocr.config import ModelConfig
    from crnn_ocr.image.preprocess import padded_width, target_width
    from crnn_ocr.train.data import SourceEntry, StepSampler

    cfg = ModelConfig(height=height)
    ok = (sizes > 0).all(axis=1)
    idx = np.nonzero(ok)[0]
    aspect = (sizes[idx, 0] / sizes[idx, 1]).astype(np.float32)
    widths = np.array([target_width(int(h), int(w), cfg) for w, h in sizes], dtype=np.int64)
    entries = [SourceEntry(None, 1.0, idx, aspect)]  # type: ignore[arg-type]  # the sampler needs no source
    used = total = 0
    for batch in StepSampler(entries, batch_size, seed=0, chunks=chunks).range(0, steps):
        w = widths[[i for _, i, _ in batch]]
        used += int(w.sum())
        total += padded_width(w.tolist(), cfg) * len(w)
    return 1 - used / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render", type=int, default=2000, help="word images to render for the rate")
    parser.add_argument("--mixed", type=int, default=1000, help="words+lines to render for the padding measure")
    parser.add_argument("--read", type=int, default=20000, help="samples to read back from an LMDB")
    parser.add_argument("--steps", type=int, default=200, help="batches for the padding measure")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lmdb", help="also measure reading and padding on this LMDB (read only)")
    parser.add_argument("--fonts", help="font folder (default: discovered system fonts plus the bundled ones)")
    parser.add_argument("--quick", action="store_true", help="small counts, to check the script works")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "data.md"))
    args = parser.parse_args()
    if args.quick:
        args.render, args.mixed, args.read, args.steps = 100, 100, 500, 20

    from crnn_ocr.datasets.lmdb_writer import LmdbWriter
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.datasets.synth.fonts import discover_fonts

    info = machine()
    fonts = discover_fonts([args.fonts] if args.fonts else None)
    lines = ["# Data pipeline benchmarks", "",
             f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, OpenCV {info['opencv']}, "
             f"Pillow {info['pillow']}, py-lmdb {info['lmdb']}; OMP_NUM_THREADS={info['omp_threads']}; "
             f"load average at start {info['load']}.",
             f"Run: `python benchmarks/bench_data.py {' '.join(sys.argv[1:])}` on {time.strftime('%Y-%m-%d %H:%M')}.",
             "All rates are one process (one core). 'CPU' rates divide by the process's CPU seconds, 'wall' by elapsed "
             "seconds; they differ when other work shares the machine.", ""]

    # 1. rendering, word images only
    words, samples = bench_render(args.render, fonts, line_share=0.0)
    r, e = words["render"], words["encode"]
    both_cpu = r.cpu + e.cpu
    lines += ["## Rendering (word images, 1 process)", "",
              f"{len(fonts)} fonts ({len({f.family for f in fonts})} families), {words['count']} images, mean "
              f"{words['mean_width']:.0f}x{words['mean_height']:.0f} px, {words['mean_chars']:.1f} characters.", "",
              "| step | images/s (CPU) | images/s (wall) |", "| --- | ---: | ---: |",
              f"| render | {words['count'] / r.cpu:.0f} | {words['count'] / r.wall:.0f} |",
              f"| render + JPEG encode | {words['count'] / both_cpu:.0f} | {words['count'] / (r.wall + e.wall):.0f} |",
              "", f"TextRecognitionDataGenerator reports {TRDG_RATE} images/s on one thread: render + encode here is "
              f"{words['count'] / both_cpu / TRDG_RATE:.1f}x that (CPU).", ""]

    with tempfile.TemporaryDirectory() as tmp:
        # 2. LMDB read + decode of what was just rendered (repeated up to --read samples)
        path = Path(tmp) / "words.lmdb"
        with LmdbWriter(path) as writer:
            for k in range(max(args.read, len(samples))):
                data, text, image = samples[k % len(samples)]
                writer.add(data, text, (image.shape[1], image.shape[0]))
        read_runs = [("rendered words (JPEG, gray)", bench_read(path, args.read))]
        if args.lmdb:
            read_runs.append((args.lmdb, bench_read(Path(args.lmdb), args.read)))
        lines += ["## LMDB read and decode (1 process)", "",
                  "Read = image bytes + label through `LmdbSource` (a transaction per get, as training does); "
                  "decode = `imageio.read_image` to gray uint8.", "",
                  "| LMDB | samples | mean bytes | read /s (CPU) | decode /s (CPU) | read+decode /s (CPU) | read+decode /s (wall) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, res in read_runs:
            n, rd, dc = res["count"], res["read"], res["decode"]
            lines.append(f"| {name} | {n} | {res['mean_bytes']:.0f} | {n / rd.cpu:.0f} | {n / dc.cpu:.0f} | "
                         f"{n / (rd.cpu + dc.cpu):.0f} | {n / (rd.wall + dc.wall):.0f} |")
        lines.append("")

    # 3. augmentation
    aug = bench_augment([im for _, _, im in samples])
    lines += ["## Augmentation (1 process)", "",
              f"`augment()` on the rendered word images: {aug['count'] / aug['time'].cpu:.0f} images/s (CPU), "
              f"{aug['count'] / aug['time'].wall:.0f} images/s (wall).", ""]

    # 4. padding with and without bucketing
    from crnn_ocr.datasets.synth import render_chunks

    sets = []
    mixed_sizes = np.array([size for _, _, size in render_chunks(args.mixed, fonts, seed=1, workers=1)], dtype=np.int64)
    sets.append((f"synth words+lines (line share 0.35), {len(mixed_sizes)} samples", mixed_sizes))
    if args.lmdb:
        sizes = open_source(args.lmdb).sizes().astype(np.int64)
        sets.append((f"{args.lmdb}, {len(sizes)} samples", sizes))
    lines += ["## Padding in training batches", "",
              f"`StepSampler` batches of {args.batch_size} at height 32 over {args.steps} steps; padding share = "
              "1 - (sum of image widths) / (batch size x padded batch width). chunks=1 is no bucketing (random "
              "batches); chunks=8 sorts 8 batches' worth by aspect ratio before cutting (the training default).", "",
              "| data | chunks=1 (no bucketing) | chunks=8 (bucketed) | chunks=32 |", "| --- | ---: | ---: | ---: |"]
    for name, sizes in sets:
        shares = [padding_share(sizes, args.batch_size, c, args.steps) for c in (1, 8, 32)]
        lines.append(f"| {name} | {shares[0]:.1%} | {shares[1]:.1%} | {shares[2]:.1%} |")
    lines.append("")

    text = "\n".join(lines)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
