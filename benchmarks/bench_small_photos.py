"""Small photos: thumbnails and web images under 150,000 pixels, which `--layout auto` used to give the line finder.

Training photos (MSRA-TD500 lines, Street View words; never ../shared/eval) are scaled down to a long side of
`--sides` pixels, boxes with them, and read three ways: `auto` as shipped, `auto` with small photos kept off the
detector (the route before `SMALL_PHOTO_MIN_SIDE`), and `--layout photo`. Scored as `ocr eval` scores whole images
(P / R / H at IoU 0.5, end-to-end hits where the set has text). The MSRA-TD500 training photos with their text
painted out, scaled the same way, count the images that print anything (junk).

    python benchmarks/bench_small_photos.py                       # 100 photos of each set at 400 and 240 pixels
    python benchmarks/bench_small_photos.py --limit 300 --sides 320
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SCENES = REPO.parent / "shared" / "train" / "scenes"
SETS = ("msra_td500_train", "svt_scenes_train")
WAYS = ("auto", "auto, small photos to the line finder", "photo")


def shrink(image, side: int):
    import cv2
    import numpy as np

    scale = side / max(image.shape[:2])
    return np.ascontiguousarray(cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)), scale


def read(reader, image, way: str):
    from crnn_ocr.page import reading

    if way == WAYS[1]:
        saved, reading.SMALL_PHOTO_MIN_SIDE = reading.SMALL_PHOTO_MIN_SIDE, 10**9
        try:
            return reader.read(image)
        finally:
            reading.SMALL_PHOTO_MIN_SIDE = saved
    return reader.read(image, layout="photo" if way == "photo" else None)


def score_set(reader, folder: Path, side: int, limit: int) -> dict[str, Counter]:
    from crnn_ocr.detect.labels import read_rgb
    from crnn_ocr.detect.scoring import read_labels, score_detections

    totals = {way: Counter() for way in WAYS}
    for record in read_labels(folder)[:limit]:
        image, scale = shrink(read_rgb(folder / record["image"]), side)
        regions = [dict(r, quad=[[x * scale, y * scale] for x, y in r["quad"]]) for r in record["regions"]]
        level = "line" if any(r.get("level") == "line" for r in regions) else "word"
        for way in WAYS:
            document = read(reader, image, way)
            lines = document.lines
            boxes = lines if level == "line" else [word for line in lines for word in line.words]
            found = score_detections([{"quad": [list(map(float, p)) for p in b.quad], "text": b.text} for b in boxes],
                                     regions, level=level)
            totals[way].update(tp=found.tp, fp=found.fp, fn=found.fn, e2e=found.e2e_tp,
                               **{f"route {page.layout}": 1 for page in document.pages})
    return totals


def junk(reader, side: int, limit: int) -> dict[str, int]:
    from crnn_ocr.detect.inpaint import prepare_backgrounds
    from crnn_ocr.detect.labels import read_rgb

    printed = Counter()
    for path in prepare_backgrounds(SCENES / "msra_td500_train")[:limit]:
        image, _ = shrink(read_rgb(path), side)
        for way in WAYS[:2]:
            printed[way] += bool(read(reader, image, way).lines)
    return printed


def main(argv: list[str] | None = None) -> int:
    import crnn_ocr

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sides", type=int, nargs="+", default=[400, 240])
    parser.add_argument("--limit", type=int, default=100, help="photos of each set")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    missing = [name for name in SETS if not (SCENES / name / "labels.jsonl").is_file()]
    if missing:
        print(f"bench_small_photos: {', '.join(missing)} not in {SCENES}", file=sys.stderr)
        return 1
    reader = crnn_ocr.load(threads=args.threads)
    print("| set | long side | reading | P | R | H | e2e hits | routes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for side in args.sides:
        for name in SETS:
            for way, c in score_set(reader, SCENES / name, side, args.limit).items():
                p = c["tp"] / max(1, c["tp"] + c["fp"])
                r = c["tp"] / max(1, c["tp"] + c["fn"])
                h = 2 * p * r / max(p + r, 1e-9)
                routes = ", ".join(f"{k[6:]} {v}" for k, v in sorted(c.items()) if k.startswith("route "))
                e2e = c["e2e"] if name != "msra_td500_train" else "-"
                print(f"| {name} ({args.limit}) | {side} | {way} | {p:.3f} | {r:.3f} | {h:.3f} | {e2e} | {routes} |",
                      flush=True)
    print("\n| painted-out MSRA-TD500 training photos | long side | reading | images printing anything |")
    print("| --- | --- | --- | --- |")
    for side in args.sides:
        for way, n in junk(reader, side, 300).items():
            print(f"| 300 | {side} | {way} | {n} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
