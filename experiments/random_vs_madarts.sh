#!/usr/bin/env bash
# What does the gradient-based search buy? MA-DARTS against NNI's Random multi-trial search over the same SNN
# space, at the same budget, on the embedded digits:
#   1. MA-DARTS searches 3 epochs at width 4, 3 cells; its wall time is the budget;
#   2. Random search (nni-snn multitrial, through the NNI manager and web UI) trains sampled networks of the same
#      size 2 epochs each, on the same weight half / alpha half split, until the budget is spent;
#   3. both winners are retrained the same way (width 8, 5 cells, 10 epochs, same seed) and compared.
# Run from the repository root on an otherwise idle machine (the budget is wall time):
#   bash experiments/random_vs_madarts.sh [OUTPUT_DIR] [PORT]
set -euo pipefail
out=${1:-runs/random_vs_madarts}
port=${2:-8080}
bin=${NNI_SNN_BIN:-.venv/bin}
data=(--dataset digits --batch-size 64 --seed 0)
small=(--width 4 --cells 3 --attention ma)

start=$(date +%s)
"$bin/nni-snn" search "${data[@]}" "${small[@]}" --epochs 3 --no-progress --output "$out/madarts"
budget=$(( $(date +%s) - start ))
echo "budget: ${budget} s (the MA-DARTS search's wall time)"
"$bin/nni-snn" multitrial "${data[@]}" "${small[@]}" --search-strategy random --epochs 2 --trials 1000 \
    --duration "${budget}s" --port "$port" --output "$out/random"
for run in madarts random; do
    "$bin/nni-snn" retrain --arch "$out/$run/arch.json" "${data[@]}" --width 8 --cells 5 --epochs 10 \
        --no-progress --output "$out/$run/retrain"
done
"$bin/nni-snn" front "$out/madarts" "$out/random" --output "$out/front.png"
