#!/usr/bin/env bash
# Prepares the one-shot GPU check (bench/gpu/run.sh) on THIS machine, for the device tool's machine,
# which has PyTorch with CUDA but no Node and no registry: bundles bench/gpu/ours.ts into one file
# with esbuild, puts Dawn's dawn.node beside it, xz-compresses this machine's own Node binary, and
# downloads the Vulkan loader debs into .gl/ (as /work/.library/device/README.md says). Everything
# goes into ignored paths, named in the device call's `carry`:  bench/gpu/carry  .gl
# Prints their sizes against the 64 MiB limit (working tree + carried paths).
#
#   bash bench/gpu/prepare.sh            # then the device call printed at the end
set -euo pipefail
cd "$(dirname "$0")/../.."
CARRY=bench/gpu/carry
mkdir -p "$CARRY/dist/linux-x64"

# 1. The bench in one ES module. webgpu's index.js loads dist/<platform>-<arch>/dawn.node next to
#    itself, i.e. next to the bundle; the WGSL is read from the repository's wgsl/ (found by
#    walking up from the bundle).
npx esbuild bench/gpu/ours.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile="$CARRY/ours.mjs" --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
DAWN=node_modules/webgpu/dist/linux-x64/dawn.node
if [ ! -f "$CARRY/dawn.sha256" ] || [ "$(sha256sum < "$DAWN")" != "$(cat "$CARRY/dawn.sha256")" ]; then
  xz -T0 -6 -c "$DAWN" > "$CARRY/dist/linux-x64/dawn.node.xz"
  sha256sum < "$DAWN" > "$CARRY/dawn.sha256"
fi

# 2. This machine's Node (the official static build: it needs only glibc and libstdc++); kept
#    from an earlier run when the version is the same (compressing it takes minutes).
NODE_BIN="$(readlink -f "$(command -v node)")"
if [ ! -f "$CARRY/node.xz" ] || [ "$(node -p process.version)" != "$(cat "$CARRY/node.version" 2>/dev/null)" ]; then
  xz -T0 -6 -c "$NODE_BIN" > "$CARRY/node.xz"
  node -p "process.version" > "$CARRY/node.version"
fi

# 3. The Vulkan loader and GL dispatch libraries, amd64 debs (device README).
if [ ! -d .gl ] || ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
  # .gitignore already ignores /.gl/; only a checkout without that line needs the exclude entry.
  git check-ignore -q .gl || echo /.gl/ >> "$(git rev-parse --git-path info/exclude)"
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi

# The debs must hold the loader (checked by unpacking them into a scratch folder, never over /).
scratch=$(mktemp -d); for f in .gl/*.deb; do dpkg -x "$f" "$scratch"; done
find "$scratch" -name 'libvulkan.so.1*' | grep -q . || { echo ".gl/*.deb holds no libvulkan.so.1" >&2; exit 1; }
rm -rf "$scratch"

# 4. Sizes: what travels is the working tree (tracked + untracked, not ignored) plus the carried paths.
tree_bytes=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carry_bytes=$(du -cb "$CARRY" .gl | tail -1 | cut -f1)
total=$((tree_bytes + carry_bytes))
printf 'working tree %.1f MiB + carried %.1f MiB (bench/gpu/carry %.1f, .gl %.1f) = %.1f MiB of 64\n' \
  "$(echo "$tree_bytes/1048576" | bc -l)" "$(echo "$carry_bytes/1048576" | bc -l)" \
  "$(echo "$(du -sb "$CARRY" | cut -f1)/1048576" | bc -l)" "$(echo "$(du -sb .gl | cut -f1)/1048576" | bc -l)" \
  "$(echo "$total/1048576" | bc -l)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "over the 64 MiB limit" >&2; exit 1; }
cat <<'CALL'
device tool call (one run; about 4-6 minutes on an H200 after the machine's start):
  command:   bash bench/gpu/run.sh
  carry:     ["bench/gpu/carry", ".gl"]
  timeout_s: 540
CALL
