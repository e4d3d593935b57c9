"""Write data/recipes/train_sroie.tsv: SROIE train lines with the case of each word taken from what a model reads.

SROIE labels are upper-cased even where the receipt prints lower case. A word keeps the label's letters; where the
model reads the same word (ignoring case) and it has 3 letters or more, it takes the model's case, so "TOTAL" printed as "Total" is labelled
"Total". Words the model misreads stay upper case, as labelled.

    .venv/bin/python data/recipes/recase_sroie.py [--model weights/crnn_default.onnx]
"""

from __future__ import annotations

import argparse
import difflib
import os
from pathlib import Path

RECIPES = Path(__file__).resolve().parent
SROIE = RECIPES.parents[2] / "shared" / "train" / "sroie_train"


def recase(label: str, read: str) -> str:
    label_words, read_words = label.split(" "), read.split(" ")
    matcher = difflib.SequenceMatcher(None, label_words, [w.upper() for w in read_words], autojunk=False)
    out = list(label_words)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            if sum(c.isalpha() for c in label_words[block.a + k]) >= 3:
                out[block.a + k] = read_words[block.b + k]
    return " ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="weights/crnn_default.onnx")
    parser.add_argument("--data", default=str(SROIE))
    parser.add_argument("--out", default=str(RECIPES / "train_sroie.tsv"))
    args = parser.parse_args()
    from crnn_ocr.runtime import OnnxRecognizer

    data = Path(args.data)
    rows = [line.split("\t", 1) for line in (data / "labels.tsv").read_text(encoding="utf-8").splitlines() if line]
    recognizer = OnnxRecognizer(args.model, threads=os.cpu_count() or 1)
    predictions = recognizer.recognize([str(data / name) for name, _ in rows])
    changed = 0
    with open(args.out, "w", encoding="utf-8") as f:
        for (name, label), prediction in zip(rows, predictions):
            text = recase(label, prediction.text)
            changed += text != label
            f.write(f"{os.path.relpath(data / name, Path(args.out).resolve().parent)}\t{text}\n")
    print(f"{len(rows)} lines, {changed} re-cased -> {args.out}")


if __name__ == "__main__":
    main()
