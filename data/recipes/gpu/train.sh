#!/usr/bin/env bash
# Run THERE, on a lent GPU machine, from the repository root, with .gpu/ carried (see prepare.sh):
#   device run: command "MINUTES=8 bash data/recipes/gpu/train.sh", carry [".gpu"], timeout_s 600
# Renders with every CPU core, continues the default recipe from .gpu/last.pt on the GPU for MINUTES, and
# returns last.pt, best.pt, log.csv and curves.png through $OUT. Back here: copy $OUT/last.pt to
# runs/default/last.pt and training goes on on the CPU (or on the next GPU) from there.
set -uo pipefail
MINUTES=${MINUTES:-8}
COUNT=${COUNT:-300000}
SEED=${SEED:-$((RANDOM + 100))}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
DEVICE=${DEVICE:-cuda}
RUN=${RUN:-runs/default}
if [ -z "${SKIP_INSTALL:-}" ]; then  # SKIP_INSTALL=1 DEVICE=cpu: a dry run of the rest on the CPU machine
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/machine.txt"
fi
export PYTHONUNBUFFERED=1
mkdir -p "$RUN"
[ -f .gpu/last.pt ] && cp .gpu/last.pt "$RUN/last.pt"
start=$(date +%s)
python3 cli.py data synth --count "$COUNT" --seed "$SEED" --workers "$(nproc)" --fonts .gpu/fonts --quiet \
  --overwrite --out /tmp/synth.lmdb 2>&1 | tail -2 | tee -a "$OUT/run.log"
echo "rendered $COUNT in $(( $(date +%s) - start )) s" | tee -a "$OUT/run.log"
VAL=$(for d in .gpu/val/*/; do printf -- "--val %s " "$d"; done)
python3 cli.py train --config data/recipes/default.toml --train /tmp/synth.lmdb $VAL --device "$DEVICE" --out "$RUN" --quiet \
  --batch-size "${BATCH:-64}" \
  --workers "$(( $(nproc) - 2 ))" --max-minutes "$MINUTES" 2>&1 | tail -20 | tee -a "$OUT/run.log"
for f in last.pt best.pt log.csv curves.png; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"; done
ls -la "$OUT"
