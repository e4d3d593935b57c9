"""Crops stay crops: `--layout auto` against `--layout line` and `--layout word` on sets of word and line crops.

Exact word accuracy (scene protocol: lower case, [0-9a-z] only) and CER per layout, and how many crops `auto`
routed where. The default reader (`crnn_ocr.load()`: shipped model, dictionary, verifier, text detector), one
thread, so `auto` is what `ocr recognize` does by default.

    python benchmarks/bench_layouts.py ../shared/train/iiit5k_train ../shared/train/ic15_train --limit 600
    python benchmarks/bench_layouts.py ../shared/eval/iiit5k_test ../shared/eval/svt_test ../shared/eval/ic13_test
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    import crnn_ocr
    from crnn_ocr.datasets.sources import open_source
    from crnn_ocr.image.io import read_image
    from crnn_ocr.page import read_pages
    from crnn_ocr.text.metrics import levenshtein, normalize_scene

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+")
    parser.add_argument("--limit", type=int, default=0, help="first N crops of each set (0: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    reader = crnn_ocr.load(threads=1)
    rows = []
    for path in args.sets:
        source = open_source(path)
        n = min(len(source), args.limit) if args.limit else len(source)
        channels = 3 if reader.detector is not None else reader.recognizer.cfg.channels  # as `ocr recognize` reads
        images = [read_image(source.image_bytes(i), channels=channels) for i in range(n)]
        truth = [normalize_scene(source.label(i)) for i in range(n)]
        row = {"set": Path(path).name, "crops": n}
        for layout in ("auto", "line", "word"):
            pages = read_pages(reader.recognizer, images, layout, reader.text_filter, detector=reader.detector)
            read = [normalize_scene(p.to_text().replace("\n", " ")) for p in pages]
            edits = sum(levenshtein(a, b) for a, b in zip(read, truth))
            row[layout] = {"accuracy": 100 * float(np.mean([a == b for a, b in zip(read, truth)])),
                           "cer": 100 * edits / max(1, sum(len(t) for t in truth)),
                           "routes": dict(Counter(p.layout for p in pages))}
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("| set | crops | auto acc / CER | line acc / CER | word acc / CER | auto routed |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        cells = [f"{r[k]['accuracy']:.2f} / {r[k]['cer']:.2f}" for k in ("auto", "line", "word")]
        print(f"| {r['set']} | {r['crops']} | {' | '.join(cells)} | {r['auto']['routes']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
