#!/usr/bin/env bash
# Run THERE, on a lent GPU machine, from the repository root, with what prepare.sh packed carried:
#   device run: command "MINUTES=8 bash data/recipes/gpu/train.sh",
#               carry [".gpu/fonts", ".gpu/whl", ".gpu/real", ".gpu/val"], timeout_s 600
# Renders mixed and document-style text with every CPU core, then warm-restarts the shipped model
# (weights/crnn_default.pt)
# on the GPU with the stage-5 mix (data/recipes/history/default_stage5.toml: renders 60%, real training crops 40%,
# low-resolution and JPEG looks, augmentation on half the samples),
# a cosine schedule of STEPS steps bounded by MINUTES, and returns last.pt, best.pt, log.csv and curves.png
# through $OUT. Back here: ship last.pt as the recipe's next stage if its validation accuracy (log.csv) beats the
# shipped model's, then measure it (benchmarks/compare_engines.py).
set -uo pipefail
MINUTES=${MINUTES:-8}
STEPS=${STEPS:-8000}
BATCH=${BATCH:-128}
COUNT=${COUNT:-300000}
DOC_COUNT=${DOC_COUNT:-60000}
SEED=${SEED:-$((RANDOM + 100))}
OUT=${OUT:-/tmp/out}
DEVICE=${DEVICE:-cuda}
RUN=${RUN:-runs/gpu}
source data/recipes/gpu/there.sh  # wheels, machine.txt; SKIP_INSTALL=1 DEVICE=cpu: a dry run
start=$(date +%s)
python3 cli.py data synth --count "$COUNT" --seed "$SEED" --workers "$(nproc)" --fonts .gpu/fonts --quiet \
  --overwrite --out /tmp/synth.lmdb 2>&1 | tail -2 | tee -a "$OUT/run.log"
python3 cli.py data synth --count "$DOC_COUNT" --style document --seed "$((SEED + 1))" --workers "$(nproc)" \
  --fonts .gpu/fonts --quiet --overwrite --out /tmp/document.lmdb 2>&1 | tail -2 | tee -a "$OUT/run.log"
echo "rendered $COUNT + $DOC_COUNT in $(( $(date +%s) - start )) s" | tee -a "$OUT/run.log"
VAL=$(for d in .gpu/val/*/; do printf -- "--val %s " "$d"; done)
python3 cli.py train --config data/recipes/history/default_stage5.toml --init weights/crnn_default.pt --out "$RUN" --fresh \
  --train /tmp/synth.lmdb:0.45 --train /tmp/document.lmdb:0.15 --train .gpu/real/ic15:0.15 \
  --train .gpu/real/iiit5k:0.1 --train .gpu/real/svt:0.05 --train .gpu/real/sroie:0.1 $VAL \
  --steps "$STEPS" --batch-size "$BATCH" --lr 1e-3 --warmup-steps 300 --seed "$SEED" --device "$DEVICE" --quiet \
  --workers "$(( $(nproc) - 2 ))" --max-minutes "$MINUTES" 2>&1 | tail -20 | tee -a "$OUT/run.log"
for f in last.pt best.pt log.csv curves.png; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"; done
ls -la "$OUT"
