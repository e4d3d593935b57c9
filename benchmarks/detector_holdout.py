"""Detectors side by side on the images a training recipe held out (never ../shared/eval): the ship-rule check.

For every complete source of the recipe with a `holdout`, the held-out images (the same name-hashed choice the
training run made) are scored at IoU 0.5 at each box threshold, detector alone, every model in one run.

    python benchmarks/detector_holdout.py -c data/recipes/detector_stage4.toml \\
        --model weights/text_detector.pt --model runs/detector_stage4/best.pt
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main(argv: list[str] | None = None) -> int:
    from tune_photo import held_out_folder

    from crnn_ocr.detect.config import DetectTrainConfig
    from crnn_ocr.detect.evaluate import evaluate_detector, load_any_detector

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-c", "--config", required=True, help="the training recipe whose held-out images to use")
    parser.add_argument("--model", action="append", required=True, help="a detector .pt or .onnx (repeatable)")
    parser.add_argument("--box", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    cfg = DetectTrainConfig.from_file(args.config)
    sources = [s for s in cfg.data if s.holdout and s.complete]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = [held_out_folder(Path(s.path), s.holdout, Path(tmp)) for s in sources]
        for model in args.model:
            detector = load_any_detector(model, args.threads, None)
            for box in args.box:
                for folder in folders:
                    r = evaluate_detector(detector, folder, box_threshold=box, threads=args.threads)
                    for level, s in r["levels"].items():
                        rows.append((model, box, f"{folder.name} ({r['images']}) {level}", s))
                        print(f"{model}  box {box}  {folder.name}/{level}: P {s['precision']:.3f} "
                              f"R {s['recall']:.3f} H {s['hmean']:.3f}", flush=True)
    print(f"\nHeld-out training images of {args.config}, IoU 0.5, detector alone\n")
    print("| model | box threshold | set (images) level | P | R | H |")
    print("| --- | --- | --- | --- | --- | --- |")
    for model, box, name, s in rows:
        print(f"| {model} | {box} | {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['hmean']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
