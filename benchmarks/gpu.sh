#!/usr/bin/env bash
# The prepared GPU run of issue 13 (item 7): four figures, each against its peer in the same run.
#
#   benchmarks/gpu.sh                   # on one GPU (CUDA torch, transformers, sae_lens): < 8 min
#   benchmarks/gpu.sh --tiny            # the same code paths at tiny sizes on CPU torch (~1 min)
#   benchmarks/gpu.sh --device cuda:1   # another card;  PYTHON=/path/to/python to choose python
#
# (a) coherence 4096×131072: the full coherence report (torch backend) vs a products-only
#     blocked torch GEMM over the same tiles                        (benchmarks/gpu_coherence.py)
# (b) TSAE training tokens/s at 2304→16384, batch 4096, our default path and our dense-GEMM path
#     vs SAELens's JumpReLU SAETrainer on the same card                  (benchmarks/train.py)
# (c) exact ℓ1 certification codes/s at 2304×16384, L0 = 70: the torch engine vs the numpy
#     engine on the same codes (benchmarks/gpu_certify.py → benchmarks/recovery.py --per-code
#     --engine torch|numpy, which it has)
# (d) harvest tokens/s on a random-weight Gemma-2-2B-shaped model (bf16, from_config, no
#     download) vs a plain forward                                      (benchmarks/harvest.py)
#
# Each part runs under its own time limit (a slow or failing part is reported and the next one
# runs); every figure is printed as a "FIGURE ...: ours ... | peer ... | ratio ..." line, and all
# of them again in the summary at the end. Exit status: 0 when every part ran (or was skipped for
# a stated reason), 1 when one failed or timed out.
set -u
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
TINY=0
DEVICE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tiny) TINY=1 ;;
    --device) DEVICE="$2"; shift ;;
    --device=*) DEVICE="${1#--device=}" ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gpu.sh: unknown option $1 (use --tiny, --device DEV)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$DEVICE" ]; then
  if [ "$TINY" = 1 ]; then DEVICE=cpu; else DEVICE=cuda; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TQDM_DISABLE=1

LOG=$(mktemp -d "${TMPDIR:-/tmp}/gpu-bench.XXXXXX")
trap 'rm -rf "$LOG"' EXIT
FAILED=0
T0=$(date +%s)

# part NAME LIMIT_S CMD...: run one part under its own limit, keep its FIGURE lines
part() {
  local name=$1 limit=$2
  shift 2
  echo "=== ($name) $* [limit ${limit}s]"
  local t=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$LOG/$name.out"
  local rc=${PIPESTATUS[0]}
  local took=$(( $(date +%s) - t ))
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "FIGURE $name: TIMED OUT after ${limit}s (no figure)" | tee -a "$LOG/$name.out"
    FAILED=1
  elif [ "$rc" != 0 ]; then
    echo "FIGURE $name: FAILED (exit $rc after ${took}s; see its output above)" \
      | tee -a "$LOG/$name.out"
    FAILED=1
  fi
  grep -h '^FIGURE' "$LOG/$name.out" >> "$LOG/figures"
  echo "--- ($name) ${took}s"
}

"$PY" - "$DEVICE" <<'EOF' || { echo "gpu.sh: device $DEVICE is not usable"; exit 2; }
import sys, torch
from rip_atoms.kernels.torch_gram import resolve_device
dev = resolve_device(sys.argv[1])
name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
print(f"gpu.sh: torch {torch.__version__} on {dev} ({name})")
EOF

if [ "$TINY" = 1 ]; then
  part coherence 60 "$PY" benchmarks/gpu_coherence.py --device "$DEVICE" --tiny
  part training 60 "$PY" benchmarks/train.py --device "$DEVICE" --dim 32 --width 128 \
    --batch 64 --tokens 2048 --steps 5 --repeat 1 --paths auto,dense --target-l0 4 --warmup
  part_cert=("$PY" benchmarks/gpu_certify.py --device "$DEVICE" --codes 16)
  part_cert_limit=90
  part_harvest=("$PY" benchmarks/harvest.py --random-config gemma2-tiny --device "$DEVICE"
                --layer 1 --tokens 1000 --context 128 --batch 4 --repeat 1)
  part_harvest_limit=60
else
  part coherence 140 "$PY" benchmarks/gpu_coherence.py --device "$DEVICE"
  part training 150 "$PY" benchmarks/train.py --device "$DEVICE" --dim 2304 --width 16384 \
    --batch 4096 --tokens 32768 --steps 200 --repeat 1 --paths auto,dense --target-l0 70
  part_cert=("$PY" benchmarks/gpu_certify.py --device "$DEVICE" --codes 2000)
  part_cert_limit=80
  part_harvest=("$PY" benchmarks/harvest.py --random-config gemma2-2b --device "$DEVICE"
                --layer 12 --tokens 65536 --context 1024 --batch 8 --repeat 1)
  part_harvest_limit=90
fi

part certification "$part_cert_limit" "${part_cert[@]}"

part harvest "$part_harvest_limit" "${part_harvest[@]}"

echo
echo "=== summary ($(( $(date +%s) - T0 ))s in all; device $DEVICE$([ "$TINY" = 1 ] && echo ', tiny sizes'))"
cat "$LOG/figures"
exit $FAILED
