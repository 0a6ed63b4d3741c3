#!/usr/bin/env bash
# The paper's model on one GPU (issue #18): random EVA-ViT-g + Q-Formers + Qwen2-7B weights at the real shapes,
# converted to float16 graphs, answering about an 8-minute video on onnxruntime's CUDA execution provider; prints
# per-stage times and the GPU's peak memory. Budget: 8 minutes on a one-GPU machine (H100 class).
#
# Needs: a built checkout (`pnpm install && pnpm build`) whose onnxruntime-node has its CUDA provider
# (`ONNXRUNTIME_NODE_INSTALL_CUDA=v12 pnpm install`, which downloads the CUDA build at install time), and nvidia-smi.
# Usage: bench/gpu-check.sh [work-dir]   (default /tmp/bvllm-gpu-check; reuses written checkpoints)
set -euo pipefail
cd "$(dirname "$0")/.."
work="${1:-/tmp/bvllm-gpu-check}"
mkdir -p "$work"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
# Peak GPU memory: sample every 200 ms in the background for the whole run.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$work/gpu-memory.log" &
sampler=$!
trap 'kill $sampler 2>/dev/null || true' EXIT
start=$(date +%s)
BVLLM_ORT_PROVIDERS=cuda,cpu timeout 470 node packages/pipeline/bench/real-scale.mjs \
  --configs paper --minutes 8 --dtype f16 --providers cuda,cpu --work "$work"
status=$?
kill $sampler 2>/dev/null || true
peak=$(sort -n "$work/gpu-memory.log" | tail -1)
echo "gpu-check: exit $status in $(( $(date +%s) - start )) s; peak GPU memory ${peak} MiB"
exit $status
