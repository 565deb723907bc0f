#!/usr/bin/env bash
# Every GPU figure the project still lacks, in one run of at most ~8 minutes on one H100/H200.
#
#   bash benchmarks/gpu_check.sh prepare          # here, once: data + Ray bundle into ignored folders
#   # device run, carry [".raybundle", ".gpudata"]:
#   . .raybundle/setup.sh && bash benchmarks/gpu_check.sh run
#
# Writes at most 8 files under $OUT (default benchmarks/results/gpu):
#   gpu_check.log                      GPU, versions, the fractional-GPU Tune run, the CUDA tests
#   bench_image_supernet.{json,md}     supernet path vs static img/s (batch 256, 224 px, bf16),
#                                      evaluation time of one architecture on 10k images
#   tts_supernet_throughput.{json,md}  TTS frames/s, supernet path vs static
#   controller_cuda_cost.{json,md}     one SemiNAS controller round on CUDA
# The GPU host has no scikit-learn, espeak-ng or network: `prepare` writes the digits and a small
# espeak-ng corpus here, to be carried.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
if [ "$mode" = prepare ]; then
  python -c "from seminas_tune.data.images import write_digits_imagefolder as w; w('.gpudata/digits', resolution=32)"
  python -m seminas_tune.data.make_espeak_corpus --out .gpudata/espeak --n 120 --val 12 --sample-rate 16000
  bash ../shared/device/make-ray-bundle.sh .raybundle
  for d in .gpudata/ .raybundle/; do grep -qxF "$d" .git/info/exclude || echo "$d" >> .git/info/exclude; done
  du -sh .gpudata .raybundle
  exit 0
fi
[ "$mode" = run ] || { echo "usage: gpu_check.sh prepare|run" >&2; exit 2; }
[ -d .gpudata/digits ] && [ -d .gpudata/espeak ] || { echo "no .gpudata: run 'gpu_check.sh prepare' first and carry it" >&2; exit 2; }
OUT=${OUT:-benchmarks/results/gpu}
mkdir -p "$OUT"
log="$OUT/gpu_check.log"
step() { echo "== $* ($(date +%T))" | tee -a "$log"; }
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python -c "import torch, ray; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'ray', ray.__version__)"
} >> "$log" 2>&1

step "image supernet: path vs static training, 10k-image evaluation"
timeout 150 python benchmarks/bench_image_supernet.py --out "$OUT" >> "$log" 2>&1 || echo "FAILED ($?)" >> "$log"

step "controller round on CUDA"
timeout 90 python benchmarks/bench_controller.py --part cost --device cuda --repeats 3 --out "$OUT" >> "$log" 2>&1 \
  || echo "FAILED ($?)" >> "$log"

step "TTS supernet throughput"
timeout 90 python benchmarks/bench_tts_supernet.py --part throughput --corpus .gpudata/espeak --amp --out "$OUT" \
  >> "$log" 2>&1 || echo "FAILED ($?)" >> "$log"

step "fractional-GPU Tune run: SemiNAS on the image supernet, 4 trials per GPU"
timeout 150 python examples/image_supernet_search.py --digits .gpudata/digits --trials 16 --steps-per-trial 50 \
  --gpus-per-trial 0.25 --cpus-per-trial 2 --concurrent 4 --out /tmp/gpu_best.pt >> "$log" 2>&1 \
  || echo "FAILED ($?)" >> "$log"

step "CUDA tests"
if python -c "import pytest" 2>/dev/null; then
  timeout 60 python -m pytest -q -m gpu tests >> "$log" 2>&1 || echo "FAILED ($?)" >> "$log"
else
  echo "pytest is not installed on this host: CUDA tests not run" >> "$log"
fi
step done
ls -la "$OUT" >> "$log"
