"""Large crops stay crops: word crops as a phone or a screenshot gives them, hundreds of thousands of pixels each.

The crop sets hold few large crops (16 of the 2000 IIIT5K training crops pass 150,000 pixels), so this takes
training crops taller than 64 pixels (IIIT5K, IC15, SVT training splits; never ../shared/eval), scales each up to a
random area of 160,000-700,000 pixels (bicubic, seeded) and reads them with `--layout auto`, `line` and `word`
(`bench_layouts.py`: exact words, scene protocol, and CER). Large images go to the text detector (photos) or the
line finder (documents) first, so this is where `auto` can lose a word the explicit layouts read.

    python benchmarks/bench_large_crops.py                 # 300 crops
    python benchmarks/bench_large_crops.py --count 100 --keep /tmp/large_crops
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TRAIN = REPO.parent / "shared" / "train"
SETS = ("iiit5k_train", "ic15_train", "svt_train")
MIN_HEIGHT = 65
AREA = (160_000, 700_000)


def make_large_crops(into: Path, count: int, seed: int) -> int:
    """Write `count` scaled-up training crops and their labels.tsv into `into`; returns how many were written."""
    import cv2

    items = []
    for name in SETS:
        folder = TRAIN / name
        for row in (folder / "labels.tsv").read_text(encoding="utf-8").splitlines():
            path, text = row.split("\t", 1)
            items.append((folder / path, text))
    rng = random.Random(seed)
    rng.shuffle(items)
    (into / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for path, text in items:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None or image.shape[0] < MIN_HEIGHT:
            continue
        factor = (rng.uniform(*AREA) / (image.shape[0] * image.shape[1])) ** 0.5
        large = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        name = f"images/{len(rows):04d}.png"
        cv2.imwrite(str(into / name), large)
        rows.append(f"{name}\t{text}")
        if len(rows) == count:
            break
    (into / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="write the crops here (kept) instead of a temporary folder")
    args = parser.parse_args(argv)
    if not all((TRAIN / name / "labels.tsv").is_file() for name in SETS):
        print(f"error: the training crops ({', '.join(SETS)}) are not under {TRAIN}", file=sys.stderr)
        return 2
    import bench_layouts

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep) if args.keep else Path(tmp) / "large_crops"
        written = make_large_crops(folder, args.count, args.seed)
        print(f"{written} crops scaled up from {', '.join(SETS)} (seed {args.seed})", file=sys.stderr)
        return bench_layouts.main([str(folder)])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
