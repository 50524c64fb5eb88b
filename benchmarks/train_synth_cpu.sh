#!/usr/bin/env bash
# CPU acceptance run: train a narrow PADet on the synthetic-shapes data for at most 15 minutes of
# training on this machine, then report COCO AP50 (pycocotools) on the held-out split and the
# anchor statistics of paper Figures 1-2.
#
#   bash benchmarks/train_synth_cpu.sh [WORK_DIR]        (default WORK_DIR: runs/synth_cpu)
#
# Environment overrides: PYTHON (default: python), MAX_MINUTES (15), THREADS (torch threads, 2).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-runs/synth_cpu}
PY=${PYTHON:-python}
MAX_MINUTES=${MAX_MINUTES:-15}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=${THREADS:-2}

DATA="$WORK/data"
RUN="$WORK/run"
if [ ! -f "$DATA/annotations/instances_val.json" ]; then
    "$PY" -m training.data.synth --out "$DATA" --train 3000 --val 300 --size 256 --seed 0 --quiet
fi

"$PY" -m training.train --config vgg16_384 --data "$DATA" --out "$RUN" \
    --width 0.125 --input-size 192 --batch-size 8 --lr 0.01 --warmup-epochs 0.2 --epochs 100 \
    --no-augment --max-minutes "$MAX_MINUTES" --eval-every 0 --workers 1 --seed 0 --quiet

"$PY" -m training.evaluate --checkpoint "$RUN/last.pth" --data "$DATA" --split val --quiet \
    --metrics-json "$RUN/val_metrics.json"
"$PY" -m training.anchor_stats --checkpoint "$RUN/last.pth" --data "$DATA" --split train --images 200 --quiet
"$PY" -c "import json, sys; m = json.load(open(sys.argv[1])); print(f\"AP50 {m['AP50']:.3f} (AP {m['AP']:.3f})\")" \
    "$RUN/val_metrics.json"
