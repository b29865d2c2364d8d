#!/usr/bin/env bash
# The CUDA paths of undersr in under 8 minutes on one GPU, and the GPU figures docs/benchmarks.md lacks.
#
#   benchmarks/gpu_check.sh              # on a machine with a CUDA GPU, from the repository root or anywhere
#   benchmarks/gpu_check.sh --dry-run    # print every command, run nothing (works on a CPU)
#   benchmarks/gpu_check.sh --out DIR    # logs and data in DIR (default results/gpu_check)
#
# Steps, most important first (each has a time limit; the whole script stops starting steps after BUDGET_S):
#   env        torch sees CUDA (and nvidia-smi)
#   data       sample photos: python -m undersr.sample_data (HR 256² + bicubic LR)
#   vqvae2     VQ-VAE-2 at paper size (options/train/recon/train_VQVAE2_tinyimagenet.yml) a few epochs on CUDA
#   hat_otf    HAT at official size (options/finetune_hat_vqvae2_otf.yml) a few iterations on CUDA: the on-the-fly
#              model (UndertrainedHATModel degrades each batch with the VQ-VAE-2 above) under a 1-process
#              torchrun with --launcher pytorch and NCCL
#   generate   undersr generate on CUDA, float32 and --amp bf16
#   amp        undersr.degrade.amp_deviation of the trained VQ-VAE-2: bf16 and fp16 autocast against float32 (at
#              most one 8-bit level apart), and the CUDA tests of tests/test_degrade_options.py
#   bench_*    benchmarks/bench_generate.py (degradation patches/s, amp variants), bench_efficiency.py (% of
#              peak), bench_train_overhead.py (on-the-fly overhead), all with --device cuda
# At the end: one line per step (ok / FAILED / skipped, seconds) and the benchmarks' summary lines, also written to
# OUT/summary.txt. Logs: OUT/<step>.log. Exit status: the number of failed steps.
set -uo pipefail
cd "$(dirname "$0")/.."

DRY=0
OUT=results/gpu_check
BUDGET_S=${BUDGET_S:-470}
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out) OUT=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (--dry-run, --out DIR)"; exit 2 ;;
  esac
  shift
done

PY=${PYTHON:-python}
DATA=$OUT/datasets/sample
VQ=gpucheck_VQVAE2
CKPT=experiments/$VQ/models/net_g_ep8.pth
START=$SECONDS
FAILED=0
RESULTS=()

# run NAME LIMIT_S COMMAND...: runs a step with a time limit, logging to OUT/NAME.log (prints it with --dry-run)
run() {
  local name=$1 limit=$2
  shift 2
  echo ">> [$name] $*"
  if [ $DRY = 1 ]; then
    return 0
  fi
  local left=$((BUDGET_S - (SECONDS - START)))
  if [ $left -lt 20 ]; then
    RESULTS+=("$name: skipped (time budget of ${BUDGET_S} s spent)")
    return 0
  fi
  [ $limit -gt $left ] && limit=$left
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  if [ $rc = 0 ]; then
    RESULTS+=("$name: ok ($((SECONDS - t0)) s)")
  else
    FAILED=$((FAILED + 1))
    RESULTS+=("$name: FAILED (exit $rc$([ $rc = 124 ] && echo ', time limit'), $((SECONDS - t0)) s; $OUT/$name.log)")
    tail -n 15 "$OUT/$name.log" | sed 's/^/   | /'
  fi
}

[ $DRY = 1 ] || mkdir -p "$OUT"
run env 30 $PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0), torch.cuda.is_bf16_supported())"
[ $DRY = 1 ] || nvidia-smi >> "$OUT/env.log" 2>&1
run data 30 $PY -m undersr.sample_data "$DATA" --crop 256

run vqvae2 90 $PY train.py -opt options/train/recon/train_VQVAE2_tinyimagenet.yml --force_yml \
  name=$VQ num_gpu=1 datasets:train:dataroot_gt=$DATA/gt datasets:train:meta_info=~ \
  datasets:train:batch_size_per_gpu=4 datasets:train:num_worker_per_gpu=2 datasets:val:dataroot_gt=$DATA/gt \
  train:total_epochs=8 "train:save_checkpoint_epochs=[4,8]" logger:print_freq=4 logger:use_tb_logger=false

run hat_otf 150 $PY -m torch.distributed.run --nproc_per_node=1 --master_port=29517 train.py \
  -opt options/finetune_hat_vqvae2_otf.yml --launcher pytorch --force_yml \
  name=gpucheck_HAT_otf num_gpu=1 "degradation:recon=['$CKPT']" path:pretrain_network_g=~ \
  datasets:train:dataroot_gt=$DATA/gt datasets:train:num_worker_per_gpu=2 \
  datasets:val:dataroot_gt=$DATA/gt datasets:val:dataroot_lq=$DATA/lq \
  train:total_iter=20 val:val_freq=20 logger:print_freq=5 logger:save_checkpoint_freq=20 \
  logger:use_tb_logger=false

run generate 60 $PY -m undersr generate --hr $DATA/gt --recon $CKPT --out $OUT/pairs_fp32 --crop 256 \
  --crops-per-image 2 --device cuda --format folder
run generate_bf16 60 $PY -m undersr generate --hr $DATA/gt --recon $CKPT --out $OUT/pairs_bf16 --crop 256 \
  --crops-per-image 2 --device cuda --format folder --amp bf16

run amp 60 $PY -c "
import undersr
from undersr.degrade import amp_deviation
from undersr.image_io import read_rgb
import glob, torch
hr = torch.stack([torch.from_numpy(read_rgb(p)).permute(2, 0, 1) for p in sorted(glob.glob('$DATA/gt/*.png'))])
hr = hr.float().div(255).cuda()
bad = 0
for amp in ('bf16', 'fp16'):
    result = amp_deviation(['$CKPT'], hr, list(range(len(hr))), amp=amp, device='cuda')
    print(f'amp {amp} vs float32, paper-size VQ-VAE-2 after 8 epochs: {result}')
    bad += not result['within_one_level']
raise SystemExit(bad)"
run amp_tests 90 $PY -m pytest -q -p no:cacheprovider tests/test_degrade_options.py -k "cuda or amp"

run bench_generate 120 $PY benchmarks/bench_generate.py --device cuda --models VQVAE2 --variants --batch-size 64 \
  --repeats 3
run bench_efficiency 90 $PY benchmarks/bench_efficiency.py --device cuda --repeats 3
run bench_train_overhead 120 $PY benchmarks/bench_train_overhead.py --device cuda --iters 10 --warmup 3

if [ $DRY = 1 ]; then
  echo "dry run: nothing was run"
  exit 0
fi
{
  echo "gpu_check.sh: $((SECONDS - START)) s, $FAILED failed"
  printf '  %s\n' "${RESULTS[@]}"
  grep -h '^summary' "$OUT"/bench_*.log 2>/dev/null
  grep -h '^amp ' "$OUT/amp.log" 2>/dev/null
} | tee "$OUT/summary.txt"
exit $FAILED
