#!/usr/bin/env bash
# Run HERE (repository root, venv active) before the GPU call. Packs what the bare GPU machine lacks
# into .gpu/ (git-ignored). The device tool carries 64 MiB a call, the tracked files (about 33 MB) included, so
# what travels is cut to fit and the script prints the total:
#   .gpu/fonts_all every usable system font, subset to the default vocabulary's glyphs (stays here)
#   .gpu/fonts   at most FONTS_PER_FAMILY styles of each family of .gpu/fonts_all (127 of 219 fonts, 7.7 MB)
#   .gpu/whl     wheels the GPU image lacks (lmdb; word lists come from data/words), for its Python 3.12
#   .gpu/val     the recipe's validation crops (../shared does not travel)
#   .gpu/real    the recipe's real training crops (data/recipes/train_*.tsv), gray JPEG (quality REAL_QUALITY) at
#                most 48 px high, at most REAL_MAX crops of the sets it names (receipt lines are long: 3 KB each)
# The warm restart starts from weights/crnn_default.pt, which travels with the tracked files.
set -euo pipefail
cd "$(dirname "$0")/../../.."
FONTS_PER_FAMILY=${FONTS_PER_FAMILY:-3}
REAL_QUALITY=${REAL_QUALITY:-80}
REAL_MAX=${REAL_MAX:-sroie=2500}
rm -rf .gpu/fonts .gpu/real .gpu/init.pt  # rebuilt so that nothing stale travels
mkdir -p .gpu/fonts_all .gpu/whl
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
python - <<'PY'
from pathlib import Path
from fontTools import subset
from crnn_ocr.datasets.synth.fonts import CHECKED_CHARS, discover_fonts

out = Path(".gpu/fonts_all")
options = subset.Options()
options.layout_features = ["*"]
options.name_IDs = ["*"]
options.notdef_outline = True
for i, font in enumerate(discover_fonts()):
    target = out / f"{i:03d}_{Path(font.path).stem}.ttf"
    if target.exists():
        continue
    try:
        f = subset.load_font(font.path, options)
        s = subset.Subsetter(options)
        s.populate(text=CHECKED_CHARS)
        s.subset(f)
        subset.save_font(f, str(target), options)
    except Exception as e:  # noqa: BLE001 - a font that cannot be subset is left behind
        print(f"skipped {font.path}: {e}")
print(f"{len(list(out.glob('*.ttf')))} fonts subset")
PY
python data/recipes/gpu/pick_fonts.py .gpu/fonts_all .gpu/fonts "$FONTS_PER_FAMILY"
REAL_QUALITY=$REAL_QUALITY REAL_MAX=$REAL_MAX python - <<'PY'
import os
from pathlib import Path

import cv2


QUALITY = int(os.environ["REAL_QUALITY"])
MOST = {k: int(v) for k, v in (item.split("=") for item in os.environ["REAL_MAX"].split(",") if item)}


def pack(tsv: Path, target: Path, max_height: int | None, most: int | None = None) -> int:
    """Copy the crops a recipe .tsv names (the first `most`) into target/images + target/labels.tsv (shrunk to
    max_height and written as JPEG if given)."""
    (target / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, line in enumerate(tsv.read_text(encoding="utf-8").splitlines()[:most]):
        rel, text = line.split("\t", 1)
        src = tsv.parent / rel
        if max_height is None:
            name = f"{i:05d}{src.suffix}"
            (target / "images" / name).write_bytes(src.read_bytes())
        else:
            image = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
            if image is None:
                continue
            if image.shape[0] > max_height:
                width = max(1, round(image.shape[1] * max_height / image.shape[0]))
                image = cv2.resize(image, (width, max_height), interpolation=cv2.INTER_AREA)
            name = f"{i:05d}.jpg"
            cv2.imwrite(str(target / "images" / name), image, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        lines.append(f"images/{name}\t{text}")
    (target / "labels.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines)


for tsv in sorted(Path("data/recipes").glob("val_*.tsv")):
    print(f"{tsv.stem}: {pack(tsv, Path('.gpu/val') / tsv.stem, None)} validation crops packed")
for tsv in sorted(Path("data/recipes").glob("train_*.tsv")):
    target = Path(".gpu/real") / tsv.stem.removeprefix("train_")
    print(f"{target.name}: {pack(tsv, target, 48, MOST.get(target.name))} training crops packed")
PY
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
for pkg in lmdb==1.7.5; do
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS -d .gpu/whl "$pkg" \
    || python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 -d .gpu/whl "$pkg" || echo "could not fetch $pkg"
done
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
carried=$(du -cb .gpu/fonts .gpu/whl .gpu/real .gpu/val | tail -1 | cut -f1)
echo "carry .gpu/fonts .gpu/whl .gpu/real .gpu/val: $((carried / 1000000)) MB, with the tracked files $(((carried + tracked) / 1000000)) MB (limit 67)"
du -sh .gpu
