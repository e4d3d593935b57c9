"""Choose the clutter rule and the word box margin of pages and photos on TRAINING images (never ../shared/eval).

`crnn_ocr.page.reading.is_clutter` drops a line of a page or photo read under PAGE_MIN_CONFIDENCE, or of at most
SHORT_TEXT characters read under SHORT_MIN_CONFIDENCE (one value for pages, one for photos). This reads every image
once with the rule off (the default reader, one thread), then scores its lines (`ocr eval`'s scoring: IoU 0.5, the
set's own level) with no rule, with each rule of a grid (the same for both layouts) and with the shipped rule, so
that the rows differ only in the rule. Words and page lines are read with tight ink boxes (WORD_BOX_MARGIN = 0)
and then grown by each `--margin` share of their height on every side under the shipped rule (words for sets scored
by word; lines of images read as pages for sets scored by line: a detected photo line has its margin already).

    python benchmarks/bench_clutter.py --limit 60
    python benchmarks/bench_clutter.py ../shared/train/scenes/funsd_train --short 0.7 0.9 --floor 0.3 0.4
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "train" / "scenes"
DEFAULT_SETS = [SHARED / "msra_td500_train", SHARED / "funsd_train", SHARED / "sroie_receipts_train"]


def read_set(reader, folder: Path, limit: int) -> tuple[list[dict], list[list]]:
    """The set's records and, per image, its (layout, line) pairs read with the clutter rule off."""
    import crnn_ocr.page.reading as reading
    from crnn_ocr.detect.scoring import read_labels

    records = read_labels(folder)[:limit or None]
    keep_all, reading.is_clutter = reading.is_clutter, lambda line, layout="page": False
    margin, reading.WORD_BOX_MARGIN = reading.WORD_BOX_MARGIN, 0.0
    try:
        lines = [[(page.layout, line) for page in reader.read(folder / r["image"]).pages for line in page.lines
                  if line.text] for r in records]
    finally:
        reading.is_clutter, reading.WORD_BOX_MARGIN = keep_all, margin
    return records, lines


def grown(quad, share: float, line_quad=None) -> list:
    """A tight quad grown by `share` of its line's height beyond each side, along its own axes (as the pipeline
    grows it with reading.WORD_BOX_MARGIN); the line is the quad itself unless given."""
    from crnn_ocr.page.reading import grow_quad

    q = np.asarray(quad if line_quad is None else line_quad, np.float64)
    height = (np.linalg.norm(q[3] - q[0]) + np.linalg.norm(q[2] - q[1])) / 2
    return [list(p) for p in grow_quad(quad, share * height)]


def score(records: list[dict], lines: list[list], level: str, clutter, margin: float = 0.0) -> dict[str, float]:
    from crnn_ocr.detect.scoring import score_detections

    total = None
    for record, read in zip(records, lines):
        kept = [(layout, line) for layout, line in read if not clutter(line, layout)]
        if level == "line":
            predictions = [{"quad": grown(line.quad, margin) if layout == "page" else line.quad, "text": line.text}
                           for layout, line in kept]
        else:
            predictions = [{"quad": grown(w.quad, margin, line.quad), "text": w.text} for _, line in kept for w in line.words]
        counts = score_detections(predictions, record["regions"], level=level)
        total = counts if total is None else total + counts
    return {"precision": total.precision, "recall": total.recall, "hmean": total.hmean}


def main(argv: list[str] | None = None) -> int:
    import crnn_ocr
    import crnn_ocr.page.reading as reading
    from crnn_ocr.detect.scoring import default_level

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="*", default=[str(s) for s in DEFAULT_SETS])
    parser.add_argument("--limit", type=int, default=0, help="first N images of each set (0: all)")
    parser.add_argument("--short", type=float, nargs="+", default=[0.5, 0.7, 0.9], help="SHORT_MIN_CONFIDENCE grid")
    parser.add_argument("--floor", type=float, nargs="+", default=[0.0, 0.4], help="PAGE_MIN_CONFIDENCE grid")
    parser.add_argument("--margin", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2],
                        help="WORD_BOX_MARGIN grid")
    args = parser.parse_args(argv)
    reader = crnn_ocr.load(threads=1)
    rows = []
    for path in map(Path, args.sets):
        records, lines = read_set(reader, path, args.limit)
        level = default_level(records)
        rows.append({"set": path.name, "images": len(records), "rule": "none", **score(records, lines, level,
                                                                                       lambda line, layout: False)})
        for short, floor in itertools.product(args.short, args.floor):
            def clutter(line, layout, short=short, floor=floor):
                text = line.text.strip()
                return line.confidence < floor or (len(text) <= reading.SHORT_TEXT and line.confidence < short)

            rows.append({"set": path.name, "images": len(records), "rule": f"short < {short}, all < {floor}",
                         **score(records, lines, level, clutter)})
        layouts = sorted({layout for read in lines for layout, _ in read})
        rows.append({"set": path.name, "images": len(records), "rule": f"shipped ({', '.join(layouts)})",
                     **score(records, lines, level, reading.is_clutter)})
        first = len(rows) - 2 - len(args.short) * len(args.floor)
        for margin in args.margin:
            rows.append({"set": path.name, "images": len(records), "rule": f"shipped, box margin {margin}",
                         **score(records, lines, level, reading.is_clutter, margin)})
        for row in rows[first:]:
            print(json.dumps(row), flush=True)
    print(f"\nshipped: short < {reading.SHORT_MIN_CONFIDENCE}, all < {reading.PAGE_MIN_CONFIDENCE} "
          f"(SHORT_TEXT = {reading.SHORT_TEXT}), word box margin {reading.WORD_BOX_MARGIN}; the layouts the sets' "
          "images took in brackets; rows without a margin score tight word boxes\n")
    print("| set | images | rule | P | R | H |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['set']} | {r['images']} | {r['rule']} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['hmean']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
