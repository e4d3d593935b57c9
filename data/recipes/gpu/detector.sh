#!/usr/bin/env bash
# Run THERE, on a lent GPU machine, from the repository root, with .gpu/det and .gpu/whl carried
# (bash data/recipes/gpu/prepare_detector.sh here first):
#   device run: command "bash data/recipes/gpu/detector.sh", carry [".gpu/det", ".gpu/whl"], timeout_s 570
# Renders scenes (backgrounds: the packed MSRA-TD500 photos painted out) and pages with every CPU core, then trains
# the text detector on the GPU with data/recipes/gpu/detector.toml (the ../shared paths pointed at the packed
# copies), a cosine schedule of STEPS steps bounded by MINUTES, and returns best.pt, last.pt and log.csv through
# $OUT. Back here: check the recipe's ship rule on the original held-out images (detector_holdout.py, see the recipe).
set -uo pipefail
MINUTES=${MINUTES:-6}
STEPS=${STEPS:-2500}
BATCH=${BATCH:-32}
SCENES=${SCENES:-3000}
PAGES=${PAGES:-600}
SEED=${SEED:-$((RANDOM + 100))}
OUT=${OUT:-/tmp/out}
DEVICE=${DEVICE:-cuda}
RUN=${RUN:-runs/detector_gpu}
WORKERS=${WORKERS:-$(( $(nproc) - 2 ))}
source data/recipes/gpu/there.sh  # wheels, machine.txt; SKIP_INSTALL=1 DEVICE=cpu: a dry run
start=$(date +%s)
rm -rf data/synth/gpu_scenes data/synth/gpu_pages "$RUN"
python3 cli.py data synth --style scene -n "$SCENES" --seed "$SEED" --sign-share 0.4 --fonts .gpu/det/fonts \
  --photos .gpu/det/msra_td500_train --workers "$(nproc)" -o data/synth/gpu_scenes 2>&1 | tail -1 | tee -a "$OUT/run.log"
python3 cli.py data synth --style page -n "$PAGES" --seed "$((SEED + 1))" --fonts .gpu/det/fonts \
  --workers "$(nproc)" -o data/synth/gpu_pages 2>&1 | tail -1 | tee -a "$OUT/run.log"
echo "rendered $SCENES scenes + $PAGES pages in $(( $(date +%s) - start )) s (seed $SEED)" | tee -a "$OUT/run.log"
sed 's#\.\./shared/train/scenes/#.gpu/det/#' data/recipes/gpu/detector.toml > /tmp/detector_gpu.toml
python3 cli.py detector train -c /tmp/detector_gpu.toml --out "$RUN" --device "$DEVICE" --batch-size "$BATCH" \
  --workers "$WORKERS" --steps "$STEPS" --max-minutes "$MINUTES" 2>&1 | grep -v "^step [0-9]*: loss" \
  | tail -30 | tee -a "$OUT/run.log"
for f in best.pt last.pt log.csv; do [ -f "$RUN/$f" ] && cp "$RUN/$f" "$OUT/"; done
echo "done in $(( $(date +%s) - start )) s" | tee -a "$OUT/run.log"
ls -la "$OUT"
