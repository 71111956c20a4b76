#!/usr/bin/env bash
# lungpath set-up: npm dependencies; the build (dist/, which the CLI runs); Debian's Chromium for the browser test of the demo
# (test/browser/demo.test.ts) when /usr/bin/chromium is missing and apt is usable as root; and — when
# Dawn finds no WebGPU adapter and apt is usable as root — a CPU Vulkan driver (lavapipe from
# Mesa >= 25, Debian bookworm-backports; see ../shared/ENVIRONMENT.md); OpenSlide (libopenslide0)
# for whole-slide images when no libopenslide is installed; and jemalloc (libjemalloc2), which the
# CLI's long commands run on, when it is missing.
# Safe to run again: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

if [ -f package-lock.json ]; then
  [ -d node_modules/webgpu ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi
# The CLI (bin/lungpath.js) runs the built JavaScript in dist/: a few seconds.
node scripts/build.mjs

apt_as_root() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; }

# apt_install PACKAGE WHAT-FOR WITHOUT-IT: installs a Debian package when apt-get runs as root;
# otherwise (or when it fails) warns what lungpath does without it. Never fails the set-up.
apt_install() {
  if apt_as_root; then
    echo "setup: installing Debian's $1 ($2)"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$1"; }; then
      echo "setup: warning: installing $1 failed; $3" >&2
    fi
  else
    echo "setup: warning: Debian package '$1' is missing and apt-get as root is not available; $3" >&2
  fi
}

if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium "the browser test of the demo drives it" \
    "test/browser/demo.test.ts will fail until /usr/bin/chromium exists"
fi

# OpenSlide, for whole-slide images (src/slide/openslide.ts loads it through koffi; without it the
# pure-JavaScript reader is used and test/slide/readers.test.ts fails).
if ! ldconfig -p 2>/dev/null | grep 'libopenslide\.so\.[01] ' >/dev/null; then
  apt_install libopenslide0 "whole-slide reading" "lungpath will read slides with its JavaScript reader only"
fi

# jemalloc, the C allocator of the CLI's long commands (bin/allocator.js preloads it): under glibc's
# malloc the RSS of a long training process creeps up (issue 16; README "Reliability"). Without it
# lungpath runs on the system allocator as before.
if ! ldconfig -p 2>/dev/null | grep 'libjemalloc\.so\.2 ' >/dev/null; then
  apt_install libjemalloc2 "the allocator of long lungpath runs" \
    "lungpath will run on the system allocator (RSS creeps up in long runs)"
fi

probe() { node scripts/probe-adapter.mjs >/dev/null 2>&1; }

if probe; then
  echo "setup: WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null)"
  exit 0
fi

if ! apt_as_root; then
  echo "setup: no WebGPU adapter, and apt-get as root is not available to install one." >&2
  echo "       Install a Vulkan driver (a GPU driver, or Mesa >= 25 lavapipe: mesa-vulkan-drivers)." >&2
  exit 1
fi

echo "setup: no WebGPU adapter; installing lavapipe (mesa-vulkan-drivers) from bookworm-backports"
. /etc/os-release
if [ "${VERSION_CODENAME:-}" = bookworm ] && ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # Same mirror as the machine's existing bookworm source.
  mirror=$(awk '$1=="URIs:" && $2 ~ /debian\/?$/ {print $2; exit} $1=="deb" && $2 ~ /debian\/?$/ {print $2; exit}' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  cat > /etc/apt/sources.list.d/bookworm-backports.sources <<SRC
Types: deb
URIs: ${mirror}
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1
else
  apt-get install -y -qq --no-install-recommends mesa-vulkan-drivers libvulkan1
fi

if probe; then
  echo "setup: WebGPU adapter found: $(node scripts/probe-adapter.mjs 2>/dev/null)"
else
  node scripts/probe-adapter.mjs || true
  echo "setup: still no WebGPU adapter after installing lavapipe" >&2
  exit 1
fi
