"""Choose the photo pipeline's thresholds on held-out TRAINING photos (never ../shared/eval).

The photo path keeps a detected line when the detector's box score reaches `box_threshold` and the recogniser
reads it with confidence at least `PHOTO_MIN_CONFIDENCE`; boxes are grown by `unclip_ratio`. This scores the
whole pipeline (`ocr eval`'s scoring, lines at IoU 0.5) on the images the detector's training held out
(`holdout` in its config: the same images in every run), for a grid of the three.

    python benchmarks/tune_photo.py --model weights/text_detector.onnx
    python benchmarks/tune_photo.py --model runs/detector_stage2/best.onnx --box 0.3 0.4 0.5 --confidence 0.4 0.6
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "train" / "scenes"


def held_out_folder(source: Path, count: int, into: Path) -> Path:
    """A folder of `count` held-out images of `source` (links) with their labels, as the training run held them."""
    from crnn_ocr.detect.labels import split_holdout
    from crnn_ocr.evaluate import LABELS_FILE, read_labels

    records = read_labels(source)
    by_name = {Path(r["image"]).name: r for r in records}

    class Named:  # split_holdout looks only at the file name
        def __init__(self, name):
            self.name = name

    _, held = split_holdout([Named(Path(r["image"]).name) for r in records], count)
    folder = into / source.name
    (folder / "images").mkdir(parents=True)
    lines = []
    for item in held:
        record = by_name[item.name]
        target = folder / record["image"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((source / record["image"]).resolve())
        lines.append(json.dumps(record))
    (folder / LABELS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def main(argv: list[str] | None = None) -> int:
    import crnn_ocr
    import crnn_ocr.page.reading as reading
    from crnn_ocr.detect.runtime import OnnxDetector
    from crnn_ocr.evaluate import evaluate_scenes

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="detector .onnx")
    parser.add_argument("--source", default=str(SHARED / "msra_td500_train"))
    parser.add_argument("--holdout", type=int, default=20, help="as in the detector's training config")
    parser.add_argument("--box", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--confidence", type=float, nargs="+", default=[0.4, 0.5, 0.6, 0.7])
    parser.add_argument("--unclip", type=float, nargs="+", default=[1.5, 2.0])
    args = parser.parse_args(argv)
    reader = crnn_ocr.load(threads=1, layout="photo")
    detector = OnnxDetector(args.model, threads=1)
    base = detector.cfg
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = held_out_folder(Path(args.source), args.holdout, Path(tmp))
        for box, confidence, unclip in itertools.product(args.box, args.confidence, args.unclip):
            detector.cfg = dataclasses.replace(base, box_threshold=box, unclip_ratio=unclip)
            reader.detector = detector
            reading.PHOTO_MIN_CONFIDENCE = confidence
            s = evaluate_scenes(reader, folder)
            row = {"box": box, "confidence": confidence, "unclip": unclip, "precision": s["precision"],
                   "recall": s["recall"], "hmean": s["hmean"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"\n{Path(args.source).name}, {args.holdout} held-out photos, lines at IoU 0.5; model {args.model}\n")
    print("| box threshold | min confidence | unclip | P | R | H |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in sorted(rows, key=lambda r: -r["hmean"]):
        print(f"| {r['box']} | {r['confidence']} | {r['unclip']} | {r['precision']:.3f} | {r['recall']:.3f} | "
              f"{r['hmean']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
