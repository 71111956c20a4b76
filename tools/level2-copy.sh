#!/bin/bash
# A copy of a finished `lungpath train` run without its Level 2, for training Level 2 again on the
# same Level 1: `lungpath train --resume` (same --data, --preset, --seed) on the copy finishes Level 1
# at once (its last checkpoints, weights and feature cache are the run's) and trains Level 2 with the
# flags given. With --cv, SRC and DST are tools/cross-validate.ts folders: every fold run is copied,
# and cross-validate.ts --out DST resumes them all.
#
#   bash tools/level2-copy.sh RUN COPY                 # then: lungpath train --data … --out COPY --resume [flags]
#   bash tools/level2-copy.sh --cv CV_OUT CV_COPY      # then: npx tsx tools/cross-validate.ts … --out CV_COPY [-- flags]
set -euo pipefail

copy_run() { # copy_run SRC DST [DATA_FROM DATA_TO]
  local s=$1 d=$2
  rm -rf "$d"; mkdir -p "$d/checkpoints"
  cp "$s"/{config.json,data.json,kernels.json,train.json,level1.safetensors} "$d/"
  cp -r "$s/cache" "$d/"
  cp "$s"/checkpoints/level1-epoch-*.safetensors "$d/checkpoints/"
  grep '"level":1' "$s/metrics.jsonl" > "$d/metrics.jsonl"
  # A fold's images are links under its own data folder; the run records them by absolute path.
  if [ $# -eq 4 ]; then sed -i "s#$3/#$4/#g" "$d/data.json" "$d/train.json"; fi
}

if [ "${1:-}" = --cv ]; then
  [ $# -eq 3 ] || { sed -n '2,10p' "$0"; exit 2; }
  src=$(realpath "$2"); dst=$(realpath -m "$3")
  for fold in "$src"/fold-*/; do
    k=$(basename "$fold")
    [ -f "$src/$k/run/level1.safetensors" ] || { echo "$src/$k: no finished Level 1, skipped" >&2; continue; }
    rm -rf "$dst/$k"
    copy_run "$src/$k/run" "$dst/$k/run" "$src/$k/data" "$dst/$k/data"
  done
else
  [ $# -eq 2 ] || { sed -n '2,10p' "$0"; exit 2; }
  copy_run "$(realpath "$1")" "$(realpath -m "$2")"
fi
