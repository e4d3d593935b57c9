#!/bin/bash
# Issue #8's same-budget comparison: a crnn_s trained from scratch on renders only, against the same with half
# of its samples drawn from the same renders passed through the GAN (same texts, fonts and seeds), both
# scored on ../shared/eval. One core: OMP_NUM_THREADS=1, --threads 1. Results in crnn_ocr/gan/README.md.
#   bash benchmarks/gan_comparison.sh                 # renders, GAN, both arms with SEED=0, evaluation
#   SEED=1 bash benchmarks/gan_comparison.sh          # another training seed; renders and GAN are reused
#   SEED=1 ARMS=gan bash benchmarks/gan_comparison.sh # one arm (two cores: run the arms side by side)
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export OMP_NUM_THREADS=1
D=${OUT:-runs/gan_cmp}
SEED=${SEED:-0}
STEPS=${STEPS:-1500}
ARMS=${ARMS:-plain gan}
mkdir -p "$D"
t() { echo "== $(date +%T) $*"; }
t plain renders
[ -d "$D/plain.lmdb" ] || ocr data synth -n 96000 --seed 11 --line-share 0 --workers 1 -o "$D/plain.lmdb" -q
t gan train
[ -f "$D/gan.pt" ] || ocr gan train --real data/recipes/train_ic15.tsv --real data/recipes/train_iiit5k.tsv \
  --real data/recipes/train_svt.tsv --recognizer weights/crnn_default.pt --synth "$D/plain.lmdb" --synth-count 5000 \
  --steps 1000 --sample-every 250 --checkpoint-every 250 --threads 1 --seed 0 --out "$D/gan.pt" -q
t gan renders
[ -d "$D/gan.lmdb" ] || ocr gan refine "$D/plain.lmdb" --model "$D/gan.pt" --out "$D/gan.lmdb" -q
suffix=$([ "$SEED" = 0 ] && echo "" || echo "_s$SEED")
for arm in $ARMS; do
  t "train $arm (seed $SEED)"
  if [ $arm = plain ]; then SRC=(--train "$D/plain.lmdb"); else SRC=(--train "$D/plain.lmdb:0.5" --train "$D/gan.lmdb:0.5"); fi
  ocr train "${SRC[@]}" --vocab default --arch crnn_s --height 32 --steps "$STEPS" --batch-size 64 --seed "$SEED" \
    --threads 1 --val data/recipes/val_iiit5k.tsv --val data/recipes/val_ic15.tsv --val-every 750 \
    --out "$D/$arm$suffix" -q > "$D/$arm$suffix.json"
  t "eval $arm (seed $SEED)"
  ocr eval -m "$D/$arm$suffix/last.pt" -d ../shared/eval/iiit5k_test -d ../shared/eval/svt_test \
    -d ../shared/eval/ic13_test -d ../shared/eval/sroie_test --json > "$D/eval_$arm$suffix.json"
done
t done
