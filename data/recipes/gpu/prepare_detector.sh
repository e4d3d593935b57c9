#!/usr/bin/env bash
# Run HERE (repository root, venv active) before a GPU call for the text detector (data/recipes/gpu/detector.sh).
# Packs into .gpu/ (git-ignored) what the bare GPU machine lacks, small enough to travel beside the working tree
# (the device tool carries 64 MiB in all, the tracked files included):
#   .gpu/whl              as prepare.sh makes it (run first if missing), plus pyclipper and shapely wheels
#   .gpu/det/fonts        one style of each font family of prepare.sh's subset (.gpu/fonts_all), for the renders
#   .gpu/det/<set>        the detector recipe's real training sets from ../shared/train/scenes, names kept (so the
#                         same images are held out there as here); the document sets cut to their held-out images
#                         and KEEP more; the training images of the sets in REENCODE written again as JPEG of that
#                         quality (a JPEG look the crops get anyway), the held-out ones always copied as they are
#                         (re-encoded at quality 55 they cost the shipped detector 0.04 of MSRA-TD500 line hmean)
# The run starts from the shipped detector (weights/text_detector.pt travels with the tracked files).
set -euo pipefail
cd "$(dirname "$0")/../../.."
REENCODE=${REENCODE:-msra_td500_train=55,svt_scenes_train=55,sroie_receipts_train=55}
KEEP=${KEEP:-funsd_train=12,sroie_receipts_train=20}
[ -d .gpu/fonts_all ] && ls .gpu/whl/lmdb-*.whl >/dev/null 2>&1 || bash data/recipes/gpu/prepare.sh
PLATFORMS="--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
for pkg in pyclipper==1.4.0 shapely==2.2.0; do
  name=${pkg%%==*}
  ls .gpu/whl/"$name"-*.whl >/dev/null 2>&1 && continue
  python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp $PLATFORMS \
    -d .gpu/whl "$pkg" || echo "could not fetch $pkg"
done
rm -rf .gpu/det
python data/recipes/gpu/pick_fonts.py .gpu/fonts_all .gpu/det/fonts 1
REENCODE=$REENCODE KEEP=$KEEP python - <<'PY'
import json
import os
import shutil
from pathlib import Path

import cv2

from crnn_ocr.detect.labels import split_holdout

SOURCE = Path("../shared/train/scenes")
HOLDOUT = {"msra_td500_train": 20, "funsd_train": 12, "sroie_receipts_train": 12, "svt_scenes_train": 10}
KEEP = dict(item.split("=") for item in os.environ["KEEP"].split(",") if item)  # set=images beside the held-out
REENCODE = dict(item.split("=") for item in os.environ["REENCODE"].split(",") if item)  # set=JPEG quality


class Named:
    def __init__(self, name):
        self.name = name


for name, holdout in HOLDOUT.items():
    source, target = SOURCE / name, Path(".gpu/det") / name
    records = [json.loads(line) for line in (source / "labels.jsonl").read_text(encoding="utf-8").splitlines() if line]
    _, held = split_holdout([Named(Path(r["image"]).name) for r in records], holdout)
    held_names = {h.name for h in held}
    if name in KEEP:  # documents: a few dozen teach much of what the whole set does; the held-out ones stay
        rest = [r for r in records if Path(r["image"]).name not in held_names]
        records = [r for r in records if Path(r["image"]).name in held_names] + rest[:int(KEEP[name])]
    for record in records:
        src, dst = source / record["image"], target / record["image"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        if name in REENCODE and src.suffix.lower() in (".jpg", ".jpeg") and src.name not in held_names:
            image = cv2.imread(str(src), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
            cv2.imwrite(str(dst), image, [cv2.IMWRITE_JPEG_QUALITY, int(REENCODE[name])])
        else:
            shutil.copyfile(src, dst)
    (target / "labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"{name}: {len(records)} images, {size / 1e6:.1f} MB")
PY
tracked=$(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1)
carried=$(du -cb .gpu/det .gpu/whl | tail -1 | cut -f1)
echo "carry .gpu/det and .gpu/whl: $((carried / 1000000)) MB, with the tracked files $(((carried + tracked) / 1000000)) MB (limit 67)"
