"""Does each Latin-script language read as well as English? Per-language rendered dev sets, one table.

Renders `--count` crops per language with the project's renderer (`--charset latin`, that language's words only,
seed `--seed` + the language's position: the same crops every run), reads them with each `--model` without and
with the language's dictionary, and reports exact-match accuracy and CER per language. These are the project's
own renders, never ../shared/eval; a model is only as good here as the renderer is like real text.

    python benchmarks/bench_languages.py --model weights/crnn_default.onnx      # writes results/languages.md
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


def render_dev_set(lang: str, count: int, seed: int, fonts) -> tuple[list, list[str]]:
    from crnn_ocr.datasets.synth import SynthGenerator
    from crnn_ocr.text.vocab import LATIN_CHARSET

    generator = SynthGenerator(fonts, charset=LATIN_CHARSET, languages=(lang,), line_share=0.2)
    rng = random.Random(seed)
    samples = [generator.sample(rng) for _ in range(count)]
    return [image for image, _ in samples], [text for _, text in samples]


def score(truths: list[str], readings: list[str]) -> tuple[float, float]:
    from crnn_ocr.text.metrics import levenshtein

    exact = sum(t == r for t, r in zip(truths, readings)) / len(truths)
    cer = sum(levenshtein(t, r) for t, r in zip(truths, readings)) / max(1, sum(len(t) for t in truths))
    return 100 * exact, 100 * cer


def main(argv: list[str] | None = None) -> int:
    from machine import write_table_report

    from crnn_ocr.datasets.synth import discover_fonts
    from crnn_ocr.datasets.synth.text import LANGUAGES
    from crnn_ocr.errors import VocabError
    from crnn_ocr.reader import load_recognizer
    from crnn_ocr.text.dictionary import load_dictionary

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", action="append", help="ONNX or .pt recogniser (repeatable; default: the shipped one)")
    parser.add_argument("--count", type=int, default=150, help="crops per language")
    parser.add_argument("--seed", type=int, default=900)
    parser.add_argument("--languages", default=",".join(LANGUAGES))
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/languages.md"))
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    models = args.model or [str(REPO / "weights/crnn_default.onnx")]
    languages = [lang.strip() for lang in args.languages.split(",") if lang.strip()]
    fonts = discover_fonts()
    dev = {lang: render_dev_set(lang, args.count, args.seed + LANGUAGES.index(lang), fonts) for lang in languages}

    header = ["language", "characters outside the model's"]
    rows = {lang: [lang] for lang in languages}
    for model in models:
        recognizer = load_recognizer(model, threads=1)
        name = Path(model).name
        header += [f"{name} exact / CER", f"{name} + dictionary exact / CER"]
        for lang in languages:
            images, truths = dev[lang]
            if len(rows[lang]) == 1:
                outside = sum(bool(recognizer.vocab.unknown(t)) for t in truths)
                rows[lang].append(f"{100 * outside / len(truths):.0f}% of crops")
            recognizer.set_decoder(dictionary=None)
            raw = [p.text for p in recognizer.recognize_arrays(images)]
            try:
                recognizer.set_decoder(dictionary=load_dictionary(lang, recognizer.vocab))
                corrected = [p.text for p in recognizer.recognize_arrays(images)]
            except VocabError as e:  # a model that can spell none of the language's words
                corrected = None
                print(f"{lang}: no dictionary for {name}: {e}", file=sys.stderr)
            rows[lang].append("{:.1f} / {:.2f}".format(*score(truths, raw)))
            rows[lang].append("-" if corrected is None else "{:.1f} / {:.2f}".format(*score(truths, corrected)))
            print(lang, name, rows[lang][-2], rows[lang][-1], file=sys.stderr)

    command = "python benchmarks/bench_languages.py " + " ".join(f"--model {m}" for m in (args.model or []))
    about = (f"{args.count} crops per language (words and, a fifth of them, short lines of that language's words, "
             "numbers and codes), rendered with `--charset latin` from the fonts found on the machine; exact match and "
             "character error rate in percent, one thread.")
    print(write_table_report(args.out, "Latin-script languages, rendered dev sets",
                             f"{command.strip()} --count {args.count} --seed {args.seed}", about, len(fonts), header,
                             [rows[lang] for lang in languages]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
