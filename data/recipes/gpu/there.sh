# Sourced by the scripts that run on the GPU machine (train.sh, detector.sh) after they set OUT: installs the
# carried wheels into /tmp/site and records the card in $OUT/machine.txt. SKIP_INSTALL=1 (with DEVICE=cpu) skips
# both, for a dry run on a CPU machine.
mkdir -p "$OUT"
if [ -z "${SKIP_INSTALL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/machine.txt"
fi
export PYTHONUNBUFFERED=1
