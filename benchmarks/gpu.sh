#!/usr/bin/env bash
# The GPU benchmark and CUDA tests in one short run on a lent CUDA machine with no network.
#
#   bash benchmarks/gpu.sh prepare   # here, with network: wheels into .whl/, IMDB train+test into .gpu-data/
#   bash benchmarks/gpu.sh run       # there (python3 already holds torch, lightning, torchmetrics,
#                                    # tensorboard, matplotlib and pyarrow): tests, benchmarks, a lecture run
#
# Both folders are git-ignored; the device tool carries them (`carry: [".whl", ".gpu-data"]`).
# `run` writes its logs and JSON to $OUT (or benchmarks/gpu-out) and takes about 5-7 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data/imdb}
# What the CUDA image lacks: Hydra and the Hugging Face datasets library, with their own needs.
WHEELS="hydra-core==1.3.8 omegaconf==2.3.0 antlr4-python3-runtime==4.9.3 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19"

case "${1:-}" in
prepare)
  rm -rf .whl .gpu-data && mkdir -p .whl .gpu-data/plain_text
  for spec in $WHEELS; do
    python3 -m pip download -q --no-deps --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --only-binary=:all: -d .whl "$spec" \
    || python3 -m pip download -q --no-deps -d .whl "$spec"  # antlr4's runtime is a source archive only
  done
  cp "$DATA"/plain_text/train-*.parquet "$DATA"/plain_text/test-*.parquet .gpu-data/plain_text/
  du -sh .whl .gpu-data
  ;;
run)
  out=${OUT:-benchmarks/gpu-out}
  mkdir -p "$out"
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*
  export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SEQCLF_CACHE_DIR=/tmp/seqclf-cache
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/device.txt"
  # The CUDA tests (skipped on machines without a GPU).
  python3 -m pytest -q -p no:cacheprovider -k "cuda or gpu" tests 2>&1 | tee "$out/tests.txt"
  # Hand loop, bare Lightning, seqclf K=1 and default K, at batch 32 and 1024.
  for bs in 32 1024; do
    python3 benchmarks/run.py --data .gpu-data --device cuda --batch-size "$bs" --epochs 3 --rounds 1 \
      --prep-runs 1 --out "$out/gpu-batch$bs.json" 2>&1 | tee "$out/gpu-batch$bs.txt"
  done
  # The lecture's 10-epoch LSTM run, start to end (imports and a warm data cache included).
  start=$(python3 -c 'import time; print(time.time())')
  python3 -m seqclf.cli.train experiment=lecture trainer=gpu data.path=.gpu-data paths.log_dir=/tmp/gpu-runs \
    callbacks.progress_bar.refresh_rate=0 > "$out/lecture.txt" 2>&1
  python3 -c "import time; print(f'lecture LSTM, 10 epochs, start to end: {time.time() - $start:.1f} s')" \
    | tee -a "$out/lecture.txt"
  ;;
*)
  echo "usage: bash benchmarks/gpu.sh prepare|run" >&2
  exit 2
  ;;
esac
