#!/usr/bin/env bash
# The one-shot GPU check, for the device tool (one command, < 10 minutes): lungpath's kernels and a
# seed patch-net training step through Dawn's Vulkan backend, the same convolutions and step in
# PyTorch fp32 (TF32 off, cudnn.benchmark on), and a short table last (bench/gpu/report.mjs).
# Needs what bench/gpu/prepare.sh made (carry: bench/gpu/carry, .gl). Full logs and JSON lines go to
# $OUT (or bench/gpu/out here).
#
#   bash bench/gpu/run.sh                         # on the GPU machine (defaults below)
#   REHEARSAL=1 bash bench/gpu/run.sh             # here, on lavapipe: batch 1 and 2, PyTorch on the CPU
#
# Environment: CONV_BATCH (16), STEP_BATCHES (16,64), SKIP_TORCH=1, SKIP_OURS=1, PYTHON (python3).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-bench/gpu/out}"
mkdir -p "$OUT"
CARRY=bench/gpu/carry
if [ -n "${REHEARSAL:-}" ]; then
  # Here: small batches, the built-in kernel choice (autotuning every seed shape takes long on
  # lavapipe), the carried Node rather than this machine's.
  CONV_BATCH="${CONV_BATCH:-1}"; STEP_BATCHES="${STEP_BATCHES:-1,2}"; SAMPLE_MS="${SAMPLE_MS:-1}"
  export LUNGPATH_KERNELS="${LUNGPATH_KERNELS:-heuristic}" USE_CARRIED_NODE="${USE_CARRIED_NODE:-1}"
  PYTHON="${PYTHON:-/usr/bin/python3}"; TORCH_ARGS="--threads 2"  # Debian's python3-torch
fi
CONV_BATCH="${CONV_BATCH:-16}"; STEP_BATCHES="${STEP_BATCHES:-16,64}"; SAMPLE_MS="${SAMPLE_MS:-50}"
PYTHON="${PYTHON:-python3}"
log() { echo "[run.sh $(date -u +%H:%M:%S)] $*"; }

# Node: the carried one unless this machine has its own.
if command -v node >/dev/null 2>&1 && [ -z "${USE_CARRIED_NODE:-}" ]; then NODE=node; else
  xz -dc "$CARRY/node.xz" > /tmp/node && chmod +x /tmp/node && NODE=/tmp/node
fi
[ -f "$CARRY/dist/linux-x64/dawn.node" ] || xz -dc "$CARRY/dist/linux-x64/dawn.node.xz" > "$CARRY/dist/linux-x64/dawn.node"

# The Vulkan loader (device README): unpack the carried debs over / where no loader is installed.
if ! ldconfig -p 2>/dev/null | grep -q libvulkan.so.1; then
  log "no Vulkan loader: unpacking .gl/*.deb"
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
fi
if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && [ -z "${VK_DRIVER_FILES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia* >/dev/null 2>&1 && ! ls /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" XDG_CACHE_HOME="${XDG_CACHE_HOME:-/tmp/lungpath-cache}"

log "node $($NODE -v); GPU: $(nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader 2>/dev/null || echo none)"
if [ -z "${SKIP_OURS:-}" ]; then
  log "lungpath (Dawn): conv batch $CONV_BATCH, step batches $STEP_BATCHES"
  $NODE "$CARRY/ours.mjs" --out "$OUT/ours.jsonl" --conv-batch "$CONV_BATCH" --step-batches "$STEP_BATCHES" --sample-ms "$SAMPLE_MS" > "$OUT/ours.log" 2>&1
  log "lungpath exit $? ($(wc -l < "$OUT/ours.jsonl") rows)"; tail -n 3 "$OUT/ours.log"
fi
if [ -z "${SKIP_TORCH:-}" ]; then
  log "PyTorch: the same shapes"
  PYTHONUNBUFFERED=1 $PYTHON bench/gpu/torch_bench.py --ours "$OUT/ours.jsonl" --out "$OUT/torch.jsonl" --step-batches "$STEP_BATCHES" --sample-ms "$SAMPLE_MS" ${TORCH_ARGS:-} > "$OUT/torch.log" 2>&1
  log "PyTorch exit $? ($(wc -l < "$OUT/torch.jsonl" 2>/dev/null || echo 0) rows)"; tail -n 3 "$OUT/torch.log"
fi
# Here, leave the carried folder as prepare.sh made it (the unpacked dawn.node would travel too).
[ -n "${REHEARSAL:-}" ] && rm -f "$CARRY/dist/linux-x64/dawn.node"
$NODE bench/gpu/report.mjs "$OUT/ours.jsonl" "$OUT/torch.jsonl" --markdown | tee "$OUT/report.md"
