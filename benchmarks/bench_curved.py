"""Curved, arched and steeply slanted text: rendered dev sets read by each model, beside straight renders.

Renders `--count` English crops twice from the same seed: bent (`curved = 1`: an arch or bowl half of the time,
a steep perspective a third, a strong wave the rest) and as the renderer draws them by default. The seed is
never used for training renders (those take seeds below 900), so the crops are held out; they are still the
project's own renders, never ../shared/eval. Exact match (as rendered, case and punctuation too) and CER.

    python benchmarks/bench_curved.py --model weights/crnn_default.onnx --model runs/tps/last.onnx
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_languages import score  # noqa: E402


def render_dev_set(curved: float, count: int, seed: int, fonts) -> tuple[list, list[str]]:
    from crnn_ocr.datasets.synth import SynthGenerator

    generator = SynthGenerator(fonts, languages=("en",), line_share=0.2, curved=curved)
    rng = random.Random(seed)
    samples = [generator.sample(rng) for _ in range(count)]
    return [image for image, _ in samples], [text for _, text in samples]


def main(argv: list[str] | None = None) -> int:
    from machine import write_table_report

    from crnn_ocr.datasets.synth import discover_fonts
    from crnn_ocr.reader import load_recognizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="ONNX or .pt recogniser (repeatable; default: the shipped one)")
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seed", type=int, default=990)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/curved.md"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    models = args.model or [str(REPO / "weights/crnn_default.onnx")]
    fonts = discover_fonts()
    sets = {"curved": render_dev_set(1.0, args.count, args.seed, fonts),
            "straight": render_dev_set(0.0, args.count, args.seed, fonts)}
    rows = []
    for model in models:
        recognizer = load_recognizer(model, threads=1)
        recognizer.set_decoder(dictionary=None)
        cells = [Path(model).name]
        for images, truths in sets.values():
            cells.append("{:.1f} / {:.2f}".format(*score(truths, [p.text for p in recognizer.recognize_arrays(images)])))
        rows.append(cells)
        print(" | ".join(cells), file=sys.stderr)
    command = "python benchmarks/bench_curved.py " + " ".join(f"--model {m}" for m in (args.model or []))
    about = (f"{args.count} English crops (words and, a fifth of them, short lines) rendered from seed {args.seed}, "
             "bent (`--curved 1`) and straight (the default renderer, which bends a few lines gently); the network "
             "alone (no dictionary), exact match and CER in percent, one thread.")
    print(write_table_report(args.out, "Curved and slanted text, rendered dev sets",
                             f"{command.strip()} --count {args.count} --seed {args.seed}", about, len(fonts),
                             ["model", "curved exact / CER", "straight exact / CER"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
