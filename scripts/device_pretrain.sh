#!/usr/bin/env bash
# The whole pretraining recipe at a larger size on one GPU, within 9 minutes on an H100:
# corpus (the built-in simulators run on the GPU: physviz.fields.simulate picks CUDA when there is one),
# pretraining (physviz/recipes/configs/device_h100.yaml: bf16, 16384 tokens per batch), the FNO
# baselines at the model's training time (on the GPU), evaluation, zero-shot on the FiPy sets, the card.
# Weights, results.json, the card, timings.json and logs go to $OUT; the corpus and runs to $WORKDIR
# (default: a temporary folder outside $OUT, which must stay small).
#
#   OUT=out scripts/device_pretrain.sh [--toy] [--steps N]
#
# --toy: the same stages at toy size on the CPU (two systems, a few steps; about a minute), for tests.
# --steps N: the training steps (the recipe's estimate otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # physviz from this checkout, also where it is not installed
TOY=0
STEPS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --toy) TOY=1 ;;
    --steps) STEPS="${2:?--steps needs a number}"; shift ;;
    *) echo "device_pretrain.sh: unknown argument $1 (use --toy, --steps N)" >&2; exit 2 ;;
  esac
  shift
done
OUT="${OUT:?set OUT to the folder for weights and results}"
WORKDIR="${WORKDIR:-$(mktemp -d "${TMPDIR:-/tmp}/physviz-device.XXXXXX")}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
mkdir -p "$OUT" "$WORKDIR"
OUT="$(cd "$OUT" && pwd)"
WORKDIR="$(cd "$WORKDIR" && pwd)"

FNO_ARGS=()
if [ "$TOY" = 1 ]; then
  RECIPE="$WORKDIR/toy_recipe.yaml"
  cat > "$RECIPE" <<'YAML'
name: device_toy
context: 4
eval_trajectories: 1
eval_steps: 16
rollout_steps: [10]
eval_ensemble: 1
corpus_scale: 0.01
only: [navier_stokes_decaying, fitzhugh_nagumo]
zero_shot_steps: 3
train:
  model: {preset: tiny, overrides: {n_spatial_dims: 3, context_frames: 4, delta_prediction: true}}
  steps: 4
  n_steps_input: 4
  batch: {tokens: 512}
  optimizer: {lr: 1.0e-3, warmup_steps: 1}
  loss: vmse
  checkpoint_every: 2
  log_every: 1
  valid_every: 0
  progress: false
YAML
  FNO_ARGS=(--fno-seconds 2)
else
  RECIPE=device_h100
fi
OVERRIDES=()
[ -n "$STEPS" ] && OVERRIDES=("steps=$STEPS")

{
  echo "physviz device pretrain: recipe $RECIPE, workdir $WORKDIR, out $OUT, toy $TOY"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
} | tee "$OUT/device.txt"

TIMINGS="$OUT/timings.tsv"
: > "$TIMINGS"
stage() {  # stage NAME ARGS...: one pipeline stage, its wall clock to timings.tsv, its log to $OUT
  local name="$1"; shift
  local t0; t0=$(date +%s%N)
  "$PY" -m physviz.cli.main pretrain --recipe "$RECIPE" --workdir "$WORKDIR" --stages "$name" \
    --bundle-to "$OUT/physviz-$(basename "$RECIPE" .yaml).safetensors" --card "$OUT/MODEL_CARD.md" -q "$@" \
    > "$OUT/$name.log" 2>&1 || { echo "stage $name failed; its log:" >&2; tail -40 "$OUT/$name.log" >&2; exit 1; }
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%s\t%d.%03d\n' "$name" $((ms / 1000)) $((ms % 1000)) | tee -a "$TIMINGS"
}

stage corpus
stage train ${OVERRIDES[@]+"${OVERRIDES[@]}"}
stage fno ${FNO_ARGS[@]+"${FNO_ARGS[@]}"}
stage bundle
stage evaluate
stage zero_shot
stage card
cp "$WORKDIR/results.json" "$OUT/results.json"
cp "$WORKDIR/train/metrics.jsonl" "$OUT/train_metrics.jsonl"
"$PY" - "$TIMINGS" "$OUT/timings.json" <<'PY'
import json, sys
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines() if line]
t = {k: float(v) for k, v in rows}
json.dump({"stages": t, "total_seconds": round(sum(t.values()), 1)}, open(sys.argv[2], "w"), indent=1)
print(f"total {sum(t.values()):.0f} s")
PY
