"""Does the dictionary correction touch codes? Licence plates, IBANs, serial and part numbers, rendered here.

Renders `--count` code strings in a few fonts (DejaVu, Liberation Mono where installed), reads them with the
shipped recogniser without and with the English dictionary, and counts the readings the dictionary changed
(and how many of those it made wrong). A rendered dev set of the project's own: never ../shared/eval.

    python benchmarks/bench_codes.py            # writes results/codes.md
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


def main(argv: list[str] | None = None) -> int:
    import crnn_ocr
    from crnn_ocr.text.dictionary import load_dictionary

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=600)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/codes.md"))
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    fonts = [f for f in FONTS if Path(f).exists()]
    texts = codes(args.count, rng)
    images = [render(t, rng, fonts) for t in texts]
    recognizer = crnn_ocr.load(threads=1, dictionary=None).recognizer
    raw = [p.text for p in recognizer.recognize_arrays(images)]
    recognizer.set_decoder(dictionary=load_dictionary("en", recognizer.vocab))
    corrected = [p.text for p in recognizer.recognize_arrays(images)]
    changed = [(t, a, b) for t, a, b in zip(texts, raw, corrected) if a != b]
    lines = ["# The dictionary and codes", "", f"`python benchmarks/bench_codes.py --count {args.count} --seed {args.seed}`", "",
             f"{args.count} rendered plates, IBANs, serial and part numbers ({len(fonts)} fonts), the shipped recogniser:", "",
             "| reading | exact |", "| --- | --- |",
             f"| network alone (`--dictionary none`) | {sum(t == a for t, a in zip(texts, raw))} |",
             f"| with the English dictionary (the default) | {sum(t == b for t, b in zip(texts, corrected))} |", "",
             f"Readings the dictionary changed: {len(changed)}, of them made wrong: "
             f"{sum(t == a and t != b for t, a, b in changed)}.", ""]
    lines += [f"- `{t}`: `{a}` -> `{b}`" for t, a, b in changed[:20]]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
