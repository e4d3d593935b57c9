"""Does the dictionary correction touch codes? Licence plates, IBANs, serial and part numbers, rendered here.

Renders `--count` code strings in a few fonts (DejaVu, Liberation Mono where installed), reads them with the
shipped recogniser without and with the English dictionary, and counts the readings the dictionary changed
(and how many of those it made wrong). A rendered dev set of the project's own: never ../shared/eval.

    python benchmarks/bench_codes.py            # writes results/codes.md
    python benchmarks/bench_codes.py --model runs/x/model.onnx --out /tmp/codes.md

A second table reads the training renderer's code dev set: `--per-family` crops of each family of
`crnn_ocr.datasets.synth.codes` drawn in `--style codes` looks (plates, labels, signs; seed + 1), per family.
"""

from __future__ import annotations

import argparse
import random
import string
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FONTS = ["/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
         "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf", str(REPO / "data/fonts/DejaVuSans.ttf")]


def codes(count: int, rng: random.Random) -> list[str]:
    upper, digits = string.ascii_uppercase, string.digits

    def r(chars: str, n: int) -> str:
        return "".join(rng.choice(chars) for _ in range(n))

    def plate() -> str:
        return rng.choice([f"{r(upper, 2)} {r(digits, 2)} {r(upper, 2)} {r(digits, 4)}", f"{r(upper, 1)} {r(upper, 2)} {r(digits, 4)}",
                           f"{r(upper, 2)}{r(digits, 2)} {r(upper, 3)}", f"{r(digits, 1)}{r(upper, 3)}{r(digits, 3)}",
                           f"{r(upper, 3)}-{r(digits, 4)}", f"{r(upper, 3)} {r(digits, 3)}", f"{r(upper, 2)}-{r(upper, 2)} {r(digits, 3)}"])

    def iban() -> str:
        s = r(upper, 2) + r(digits, 2) + r(upper + digits, 16)
        return " ".join(s[i:i + 4] for i in range(0, len(s), 4))

    def serial() -> str:
        return rng.choice([f"SN {r(upper + digits, 4)}-{r(upper + digits, 4)}-{r(upper + digits, 2)}",
                           f"{r(upper, 3)}{r(digits, 5)}{r(upper, 2)}", f"PN {r(digits, 4)}-{r(upper, 2)}-{r(digits, 2)}",
                           f"{r(upper, 4)}-{r(digits, 3)}", f"REF {r(upper, 3)}{r(digits, 4)}",
                           f"{r(upper, 3)} {r(upper, 3)} {r(digits, 2)}"])

    return [(plate, iban, serial)[k % 3]() for k in range(count)]


def render(text: str, rng: random.Random, fonts: list[str]) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(rng.choice(fonts), rng.randint(28, 40))
    _, _, x1, y1 = font.getbbox(text)
    image = Image.new("L", (x1 + 16, y1 + 12), rng.randint(190, 255))
    ImageDraw.Draw(image).text((8, 4), text, fill=rng.randint(0, 60), font=font)
    return np.asarray(image)


def family_table(recognizer, per_family: int, seed: int) -> list[str]:
    """Exact readings per code family on the codes-style renders, without and with the English dictionary."""
    from crnn_ocr.datasets.synth import discover_fonts
    from crnn_ocr.datasets.synth.codes import FAMILIES, sample_code
    from crnn_ocr.datasets.synth.render import Renderer
    from crnn_ocr.text.dictionary import load_dictionary

    renderer = Renderer(discover_fonts(), style="codes")
    rng = random.Random(seed)
    rows = ["", f"## Codes-style renders ({per_family} per family, seed {seed})", "",
            "| family | example | exact, network alone | exact, English dictionary | changed by the dictionary (made wrong) |",
            "| --- | --- | ---: | ---: | ---: |"]
    dictionary = load_dictionary("en", recognizer.vocab)
    totals = [0, 0, 0, 0, 0]
    for family in FAMILIES:
        texts, images = [], []
        while len(texts) < per_family:
            text = sample_code(rng, family)
            image = renderer.render(text, rng)
            if image is not None and not recognizer.vocab.unknown(text):
                texts.append(text)
                images.append(image)
        recognizer.set_decoder(dictionary=None)
        raw = [p.text for p in recognizer.recognize_arrays(images)]
        recognizer.set_decoder(dictionary=dictionary)
        fixed = [p.text for p in recognizer.recognize_arrays(images)]
        counts = [len(texts), sum(t == a for t, a in zip(texts, raw)), sum(t == b for t, b in zip(texts, fixed)),
                  sum(a != b for a, b in zip(raw, fixed)), sum(t == a != b for t, a, b in zip(texts, raw, fixed))]
        totals = [x + y for x, y in zip(totals, counts)]
        rows.append(f"| {family} | `{texts[0]}` | {counts[1]} / {counts[0]} | {counts[2]} / {counts[0]} | "
                    f"{counts[3]} ({counts[4]}) |")
    rows.append(f"| all | | {totals[1]} / {totals[0]} | {totals[2]} / {totals[0]} | {totals[3]} ({totals[4]}) |")
    return rows


def main(argv: list[str] | None = None) -> int:
    import crnn_ocr
    from crnn_ocr.text.dictionary import load_dictionary

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/codes.md"))
    parser.add_argument("--model", help="recogniser .onnx or .pt (default: the shipped one)")
    parser.add_argument("--per-family", type=int, default=100)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    fonts = [f for f in FONTS if Path(f).exists()]
    texts = codes(args.count, rng)
    images = [render(t, rng, fonts) for t in texts]
    recognizer = crnn_ocr.load(args.model, threads=1, dictionary=None).recognizer
    raw = [p.text for p in recognizer.recognize_arrays(images)]
    recognizer.set_decoder(dictionary=load_dictionary("en", recognizer.vocab))
    corrected = [p.text for p in recognizer.recognize_arrays(images)]
    changed = [(t, a, b) for t, a, b in zip(texts, raw, corrected) if a != b]
    model = f" --model {args.model}" if args.model else ""
    lines = ["# The dictionary and codes", "",
             f"`python benchmarks/bench_codes.py --count {args.count} --seed {args.seed} --per-family {args.per_family}{model}`", "",
             f"{args.count} rendered plates, IBANs, serial and part numbers ({len(fonts)} fonts), the shipped recogniser:", "",
             "| reading | exact |", "| --- | --- |",
             f"| network alone (`--dictionary none`) | {sum(t == a for t, a in zip(texts, raw))} |",
             f"| with the English dictionary (the default) | {sum(t == b for t, b in zip(texts, corrected))} |", "",
             f"Readings the dictionary changed: {len(changed)}, of them made wrong: "
             f"{sum(t == a and t != b for t, a, b in changed)}.", ""]
    lines += [f"- `{t}`: `{a}` -> `{b}`" for t, a, b in changed[:20]]
    lines += family_table(recognizer, args.per_family, args.seed + 1)
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
