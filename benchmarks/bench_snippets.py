"""Small snippets of a few lines: `--layout auto` against `page` and `line` on crops of 2-3 stacked receipt lines.

Cuts crops of two or three consecutive, non-overlapping text lines (under the crop size, 150,000 pixels) out of a
labelled scene folder with line boxes and texts (by default ../shared/train/scenes/sroie_receipts_train, training
receipts), reads each with the default reader (`crnn_ocr.load()`, one thread) under every layout, and reports the
CER of the text with whitespace removed, and how `auto` routed the crops.

    python benchmarks/bench_snippets.py
    python benchmarks/bench_snippets.py ../shared/train/scenes/sroie_receipts_train --receipts 80
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_SOURCE = REPO.parent / "shared" / "train" / "scenes" / "sroie_receipts_train"
CROP_PIXELS = 150_000


def snippets(folder: Path, receipts: int, seed: int) -> list[tuple[np.ndarray, str]]:
    """(RGB crop, its lines' texts joined by newlines), two tries per receipt of the first `receipts`."""
    rng = random.Random(seed)
    records = [json.loads(line) for line in (folder / "labels.jsonl").read_text(encoding="utf-8").splitlines() if line]
    crops = []
    for record in records[:receipts]:
        lines = [r for r in record["regions"] if r["level"] == "line" and not r.get("ignore") and r.get("text")]
        lines.sort(key=lambda r: float(np.mean(np.asarray(r["quad"])[:, 1])))
        image = cv2.imread(str(folder / record["image"]), cv2.IMREAD_COLOR)
        if image is None or len(lines) < 2:
            continue
        for _ in range(2):
            k = rng.choice((2, 3))
            start = rng.randrange(0, max(1, len(lines) - k))
            group = lines[start:start + k]
            ys = [np.asarray(r["quad"])[:, 1] for r in group]
            if any(ys[j + 1].min() < ys[j].max() - 3 for j in range(len(ys) - 1)):
                continue  # rows overlapping: not a clean stack
            corners = np.concatenate([np.asarray(r["quad"]) for r in group])
            x0, y0 = np.maximum(corners.min(axis=0) - 4, 0).astype(int)
            x1, y1 = (corners.max(axis=0) + 4).astype(int)
            crop = image[y0:y1, x0:x1]
            if 0 < crop.shape[0] * crop.shape[1] < CROP_PIXELS:
                crops.append((cv2.cvtColor(crop, cv2.COLOR_BGR2RGB), "\n".join(r["text"] for r in group)))
    return crops


def main(argv: list[str] | None = None) -> int:
    import crnn_ocr
    from crnn_ocr.page import read_pages
    from crnn_ocr.text.metrics import levenshtein

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", default=str(DEFAULT_SOURCE), help="a labels.jsonl folder with line texts")
    parser.add_argument("--receipts", type=int, default=80, help="images to cut snippets from")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    if not (folder / "labels.jsonl").is_file():
        sys.exit(f"{folder}: no labels.jsonl here")
    crops = snippets(folder, args.receipts, args.seed)
    reader = crnn_ocr.load(threads=1)
    truth = ["".join(text.split()) for _, text in crops]
    images = [crop for crop, _ in crops]
    print(f"{len(crops)} snippets of 2-3 lines from {folder.name}; CER % of the text without whitespace\n")
    print("| layout | CER | routed |")
    print("| --- | --- | --- |")
    for layout in ("auto", "page", "line"):
        pages = read_pages(reader.recognizer, images, layout, reader.text_filter, detector=reader.detector)
        read = ["".join(p.to_text().split()) for p in pages]
        cer = 100 * sum(levenshtein(a, b) for a, b in zip(read, truth)) / max(1, sum(map(len, truth)))
        routes = ", ".join(f"{k} {v}" for k, v in sorted(Counter(p.layout for p in pages).items()))
        print(f"| {layout} | {cer:.1f} | {routes} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
