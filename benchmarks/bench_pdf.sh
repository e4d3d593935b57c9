#!/usr/bin/env bash
# PDF in, searchable PDF out, one thread: `ocr recognize --format pdf` beside ocrmypdf (Debian's, Tesseract
# inside), on a rendered 3-page A4 scan at 300 dpi (35 lines of text a page). CPU seconds are user + system of
# each command and its children, from /usr/bin/time, twice each.
#   bash benchmarks/bench_pdf.sh        # needs: apt-get install ocrmypdf tesseract-ocr-eng poppler-utils
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1
work=$(mktemp -d)
python - "$work/scan.pdf" <<'PY'
import sys
from PIL import Image, ImageDraw, ImageFont
font = ImageFont.truetype("data/fonts/DejaVuSans.ttf", 40)
pages = []
for _ in range(3):
    page = Image.new("RGB", (2480, 3508), "white")
    draw = ImageDraw.Draw(page)
    for i in range(35):
        draw.text((200, 300 + 80 * i), f"Line {i}: the quarterly report of the board shows revenue of {1000 + 37 * i} euros.",
                  fill="black", font=font)
    pages.append(page)
pages[0].save(sys.argv[1], save_all=True, append_images=pages[1:], resolution=300)
PY
for run in 1 2; do
  /usr/bin/time -f "crnn_ocr %U %S %M" ocr recognize "$work/scan.pdf" --format pdf --out "$work/ours.pdf" --threads 1 --workers 1 -q
  /usr/bin/time -f "ocrmypdf %U %S %M" ocrmypdf --jobs 1 --force-ocr -q "$work/scan.pdf" "$work/ocrmypdf.pdf"
done
echo "first line of each text layer (pdftotext):"
pdftotext "$work/ours.pdf" - | head -1
pdftotext "$work/ocrmypdf.pdf" - | head -1
rm -r "$work"
