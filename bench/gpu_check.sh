#!/usr/bin/env bash
# One GPU check run of a few minutes (see bench/gpu_check.py: FLUX sections, EasyOCR, and the VQA judge at full
# size: images/s, questions/s and peak VRAM of a random-weight Qwen2.5-VL-7B-architecture judge). Usage: bench/gpu_check.sh [OUT_DIR]
# Prints a summary table; writes OUT_DIR/gpu_check.json and gpu_check.log (default OUT_DIR: ${OUT:-.}).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-.}}"
mkdir -p "$out"
PY="${PYTHON:-python}"
[ -x .venv/bin/python ] && PY="${PYTHON:-.venv/bin/python}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" timeout "${GPU_CHECK_TIMEOUT:-540}" \
  "$PY" bench/gpu_check.py --json "$out/gpu_check.json" "$@" 2> "$out/gpu_check.log"
rc=$?
[ $rc -ne 0 ] && tail -n 40 "$out/gpu_check.log"
exit $rc
