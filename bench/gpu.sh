#!/usr/bin/env bash
# The GPU check: full-size SD 1.5 UNet + one ControlNet 1.1 (random weights), one CFG step at 512×512 (batch 2, fp16),
# our engine (graphs from our builder, ONNX Runtime's WebGPU EP over Vulkan, tensors kept on the device) next to
# diffusers fp16 (torch SDPA) on the same GPU in the same run: seconds per step, peak GPU memory, output differences.
#
# Made for a fresh single-GPU machine with no network (an NVIDIA H200 with Python 3.12 + PyTorch; no Node, no
# diffusers): everything else comes from .gpu/, packed on a connected machine by bench/gpu/pack.sh (git-ignored;
# ~42 MB, carried with the repository). Runs in under 8 minutes; each half has its own time limit.
#
# Usage:
#   bench/gpu.sh               on the GPU machine (needs .gpu/ and nvidia-smi)
#   bench/gpu.sh --check       only checks that .gpu/ holds everything, and unpacks it (no GPU needed)
#   bench/gpu.sh --cpu-smoke   the whole flow at a tiny size on the CPU (provider cpu, torch cpu, our fp16 graphs with
#                              WebGPU's default conv island), to test the script here; PYTHON=<a python with torch>
#                              (default python3)
#   bench/gpu.sh --diagnose    where our step's time goes and which fp16 ops lose precision, in at most DIAG_BUDGET_S
#                              (default 190 s, unpacking included): diffusers_step.py --diagnose (also ControlNet and
#                              UNet alone, fp32 residuals saved), then bench/gpu/engine-diagnose.ts (ControlNet / UNet
#                              alone, WebGPU EP settings, UNet-alone variants with more fp32 islands, an ONNX Runtime
#                              profile with nodes per provider and op types by time); one table at the end; JSON lines in
#                              $GPU_BENCH_OUT/diagnose.jsonl (+ diffusers.json, gzipped profiles). With --cpu-smoke: the
#                              same flow at the tiny size on the CPU.
# Environment: GPU_BENCH_WORK (scratch folder, default /tmp/cn-gpu-bench), REPEATS (timed steps, default 20; 5 with
# --diagnose), GPU_PACK (the packed folder, default .gpu), GPU_BENCH_OUT (where --diagnose leaves its results, default
# the scratch folder), DIAG_VARIANTS (fp32-island variants, in order: default linear,conv,attention,all,norm,fp32),
# DIAG_SESSION_VARIANTS (WebGPU EP settings tried on the default UNet: default nchw,no-validation).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PACK=${GPU_PACK:-$ROOT/.gpu}
WORK=${GPU_BENCH_WORK:-/tmp/cn-gpu-bench}
PYTHON=${PYTHON:-python3}
MODE=gpu
DIAGNOSE=0
for arg in "$@"; do
  case "$arg" in
    --check) MODE=check ;;
    --cpu-smoke) MODE=smoke ;;
    --diagnose) DIAGNOSE=1 ;;
    *) echo "usage: bench/gpu.sh [--check|--cpu-smoke] [--diagnose]" >&2; exit 2 ;;
  esac
done
if [ "$DIAGNOSE" = 1 ]; then REPEATS=${REPEATS:-5}; else REPEATS=${REPEATS:-20}; fi
OUTDIR=${GPU_BENCH_OUT:-$WORK}
DIAG_BUDGET_S=${DIAG_BUDGET_S:-190}
fail() { echo "bench/gpu.sh: $*" >&2; exit 1; }
T0=$SECONDS

# 1. Everything it needs, or a clear list of what is missing
missing=()
for f in node.xz libonnxruntime.xz ort-js.tar.xz engine-step.mjs; do [ -s "$PACK/$f" ] || missing+=(".gpu/$f"); done
ls "$PACK"/wheels/diffusers-*.whl >/dev/null 2>&1 || missing+=(".gpu/wheels/diffusers-*.whl")
ls "$PACK"/wheels/importlib_metadata-*.whl >/dev/null 2>&1 || missing+=(".gpu/wheels/importlib_metadata-*.whl")
ls "$PACK"/vulkan/libvulkan1_*.deb >/dev/null 2>&1 || missing+=(".gpu/vulkan/libvulkan1_*.deb")
[ "$DIAGNOSE" = 0 ] || [ -s "$PACK/engine-diagnose.mjs" ] || missing+=(".gpu/engine-diagnose.mjs")
[ ${#missing[@]} -eq 0 ] || fail "missing: ${missing[*]}. Run bench/gpu/pack.sh on a connected x86-64 machine, then carry .gpu with the repository."
command -v "$PYTHON" >/dev/null || fail "no $PYTHON (set PYTHON to a Python 3.12 with torch)"
"$PYTHON" -c 'import lzma, tarfile' || fail "$PYTHON lacks lzma / tarfile (used to unpack .gpu)"
command -v dpkg >/dev/null || fail "no dpkg on this machine (unpacks the Vulkan loader)"
if [ "$MODE" = gpu ]; then
  command -v nvidia-smi >/dev/null || fail "no nvidia-smi: is this the GPU machine? (--cpu-smoke runs without one)"
fi

# 2. Unpack into the scratch folder (never into /)
rm -rf "$WORK" && mkdir -p "$WORK/app" "$WORK/bin" "$WORK/vk" "$WORK/site" "$WORK/run"
# Python's lzma: the machine may have no xz binary
unxz() { "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"), 1 << 24)' "$1" "$2"; }
unxz "$PACK/node.xz" "$WORK/bin/node" && chmod +x "$WORK/bin/node"
"$PYTHON" -c 'import sys, tarfile; t = tarfile.open(sys.argv[1], "r:xz"); t.extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' "$PACK/ort-js.tar.xz" "$WORK/app"
unxz "$PACK/libonnxruntime.xz" "$WORK/app/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1"
cp "$PACK/engine-step.mjs" "$WORK/app/"
[ "$DIAGNOSE" = 0 ] || cp "$PACK/engine-diagnose.mjs" "$WORK/app/"
for d in "$PACK"/vulkan/*.deb; do dpkg -x "$d" "$WORK/vk"; done
export LD_LIBRARY_PATH="$WORK/vk/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# the NVIDIA driver's Vulkan ICD: where the container mounts it when no loader config names it
if ! ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
  for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$icd" ] && { export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd; break; }
  done
fi
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" "$PACK"/wheels/*.whl
export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
"$WORK/bin/node" -e "require('$WORK/app/node_modules/onnxruntime-node')" || fail "the carried Node cannot load onnxruntime-node"
"$PYTHON" -c "import diffusers, torch; print('diffusers', diffusers.__version__, 'torch', torch.__version__)"
echo "unpacked in $((SECONDS - T0)) s: node $("$WORK/bin/node" -v), onnxruntime-node $("$WORK/bin/node" -p "require('$WORK/app/node_modules/onnxruntime-node/package.json').version")"
[ "$MODE" = check ] && { echo "bench/gpu.sh --check: everything is there"; exit 0; }

ISLANDS_ARG=()
if [ "$MODE" = gpu ]; then
  DEVICE=cuda SIZE=full PROVIDER=webgpu
  nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader
else
  DEVICE=cpu SIZE=tiny PROVIDER=cpu REPEATS=${REPEATS_SMOKE:-2}
  # the CPU provider's default is no island: build the fp16 graphs as WebGPU's default does (every Conv in float32)
  ISLANDS_ARG=(--fp32-islands conv)
fi

if [ "$DIAGNOSE" = 1 ]; then
  mkdir -p "$OUTDIR"
  echo "--- diffusers ($DEVICE, $SIZE, --diagnose)"
  timeout 100 "$PYTHON" "$ROOT/bench/gpu/diffusers_step.py" --out "$WORK/run" --device "$DEVICE" --size "$SIZE" --repeats "$REPEATS" --diagnose \
    | tee "$OUTDIR/diffusers.json" || fail "the diffusers half failed or ran past 100 s"
  left=$(( DIAG_BUDGET_S - (SECONDS - T0) ))
  [ "$left" -gt 40 ] || fail "only $left s of DIAG_BUDGET_S=$DIAG_BUDGET_S left for our half"
  echo "--- ours ($PROVIDER, --diagnose: $((left - 12)) s for it)"
  DIAG_RC=0
  timeout "$((left - 4))" "$WORK/bin/node" "$WORK/app/engine-diagnose.mjs" --work "$WORK/run" --provider "$PROVIDER" --repeats "$REPEATS" \
    --deadline-s "$((left - 12))" --jsonl "$OUTDIR/diagnose.jsonl" --variants "${DIAG_VARIANTS:-linear,conv,attention,all,norm,fp32}" \
    --session-variants "${DIAG_SESSION_VARIANTS:-nchw,no-validation}" || DIAG_RC=$?
  [ "$DIAG_RC" = 0 ] || echo "bench/gpu.sh: our diagnose half stopped (exit $DIAG_RC; 124: out of time); the lines it wrote stand" >&2
  if [ "$OUTDIR" != "$WORK" ] && [ -d "$WORK/run/profile" ]; then
    mkdir -p "$OUTDIR/profile"
    "$PYTHON" -c 'import gzip, os, shutil, sys
for f in os.listdir(sys.argv[1]):
    shutil.copyfileobj(open(os.path.join(sys.argv[1], f), "rb"), gzip.open(os.path.join(sys.argv[2], f + ".gz"), "wb"))' "$WORK/run/profile" "$OUTDIR/profile" || true
  fi
  "$PYTHON" "$ROOT/bench/gpu/diagnose_table.py" "$OUTDIR/diffusers.json" "$OUTDIR/diagnose.jsonl"
  echo "bench/gpu.sh --diagnose: done in $((SECONDS - T0)) s; JSON lines in $OUTDIR/diagnose.jsonl"
  exit "$DIAG_RC"
fi

# Peak GPU memory of a command: nvidia-smi's used memory sampled every 50 ms, minus what was used before it.
peak_of() { # <name> <command...>
  local name=$1; shift
  if [ "$MODE" = gpu ]; then
    local before; before=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > "$WORK/mem-$name.txt" &
    local sampler=$!
    local rc=0
    "$@" || rc=$?
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    local peak; peak=$(sort -n "$WORK/mem-$name.txt" | tail -1)
    echo "{\"before_mib\": $before, \"peak_mib\": ${peak:-0}}" > "$WORK/mem-$name.json"
    return $rc
  else
    echo '{"before_mib": null, "peak_mib": null}' > "$WORK/mem-$name.json"
    "$@"
  fi
}

# 3. diffusers: creates and saves the random-weight networks, times its fp16 step, runs fp32 once
echo "--- diffusers ($DEVICE, $SIZE)"
peak_of diffusers timeout 240 "$PYTHON" "$ROOT/bench/gpu/diffusers_step.py" --out "$WORK/run" --device "$DEVICE" --size "$SIZE" --repeats "$REPEATS" \
  | tee "$WORK/diffusers.json" || fail "the diffusers half failed or ran past 240 s"

# 4. ours, fp16 (timed, memory sampled), then the fp32 graphs for the fp16-vs-fp32 difference
echo "--- ours ($PROVIDER, fp16)"
OURS_OK=1
if ! peak_of ours timeout 240 "$WORK/bin/node" "$WORK/app/engine-step.mjs" --work "$WORK/run" --provider "$PROVIDER" --repeats "$REPEATS" --save-fp16 ${ISLANDS_ARG[@]+"${ISLANDS_ARG[@]}"} \
  | tee "$WORK/ours.json"; then
  OURS_OK=0
  echo "bench/gpu.sh: our fp16 half failed or ran past 240 s (diffusers' numbers below still stand). Vulkan setup:" >&2
  echo "  VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}; ICD files: $(ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/nvidia/share/vulkan/icd.d 2>/dev/null | tr '\n' ' ')" >&2
  echo "  loader: $(ls "$WORK"/vk/usr/lib/x86_64-linux-gnu/libvulkan.so.1 2>&1)" >&2
fi
left=$(( 470 - (SECONDS - T0) ))
if [ "$OURS_OK" = 1 ] && [ "$left" -gt 30 ]; then
  echo "--- ours ($PROVIDER, fp32, one step)"
  timeout "$left" "$WORK/bin/node" "$WORK/app/engine-step.mjs" --work "$WORK/run" --provider "$PROVIDER" --fp32-only \
    | tee "$WORK/ours-fp32.json" || echo "bench/gpu.sh: the fp32 comparison failed or ran out of time (the fp16 numbers above stand)" >&2
elif [ "$OURS_OK" = 1 ]; then
  echo "bench/gpu.sh: no time left for the fp32 comparison" >&2
fi

# 5. The table
"$PYTHON" - "$WORK" <<'EOF'
import json, os, sys
w = sys.argv[1]
def load(name):
    p = os.path.join(w, name)
    if not os.path.exists(p) or os.path.getsize(p) == 0: return {}
    lines = [l for l in open(p).read().splitlines() if l.startswith('{')]
    return json.loads(lines[-1]) if lines else {}
d, o, o32 = load('diffusers.json'), load('ours.json'), load('ours-fp32.json')
md, mo = load('mem-diffusers.json'), load('mem-ours.json')
f16 = o.get('fp16', {})
mib = lambda m: None if m.get('peak_mib') is None else m['peak_mib'] - m['before_mib']
fmt = lambda v, f='{:.4f}': '-' if v is None else f.format(v)
ds, os_ = d.get('step_s_median'), f16.get('stepSMedian')
print()
print(f"device: {d.get('device')}  torch {d.get('torch')}  attention {d.get('attention')}  onnxruntime {o.get('ortVersion')} ({o.get('provider')})")
print(f"{'':34}{'ours':>14}{'diffusers':>14}{'ours/diffusers':>16}")
print(f"{'s/step (CFG batch 2, fp16)':34}{fmt(os_):>14}{fmt(ds):>14}{fmt(os_ / ds if os_ and ds else None, '{:.2f}'):>16}")
po = mib(mo)
# diffusers: the device's used memory right after its fp16 steps (NVML, in diffusers_step.py), before its fp32
# comparison step: nvidia-smi's peak over the whole script would count the fp32 networks too
du = d.get('fp16_device_used_mib')
pd = None if du is None or md.get('before_mib') is None else du - md['before_mib']
print(f"{'peak GPU memory, MiB (fp16) *':34}{fmt(po, '{}'):>14}{fmt(pd, '{}'):>14}{fmt(po / pd if po and pd else None, '{:.2f}'):>16}")
pa = d.get('peak_allocated_bytes')
print(f"{'torch peak allocated, MiB':34}{'':>14}{fmt(pa / 2**20 if pa else None, '{:.0f}'):>14}")
print(f"{'fp16 vs fp32, rel. L2 of output':34}{fmt(o32.get('fp16VsFp32RelL2'), '{:.2e}'):>14}{fmt(d.get('fp16_vs_fp32_rel_l2'), '{:.2e}'):>14}")
print(f"{'ours fp16 vs diffusers fp16/fp32':34}{fmt(f16.get('relL2VsDiffusersFp16'), '{:.2e}'):>14}{fmt(f16.get('relL2VsDiffusersFp32'), '{:.2e}'):>14}")
print(f"{'ours fp32 vs diffusers fp32':34}{fmt(o32.get('fp32', {}).get('relL2VsDiffusersFp32'), '{:.2e}'):>14}")
print(f"{'host<->device bytes per step':34}{fmt(f16.get('hostToDevicePerStep'), '{:.0f}'):>14} up {fmt(f16.get('deviceToHostPerStep'), '{:.0f}')} down")
print(f"{'ours: extra float32 islands':34}{', '.join(f16.get('fp32Islands') or []) or 'none':>14}")
print(f"{'graph build / load / first step, s':34} {fmt(f16.get('buildS'), '{:.1f}')} / {fmt(f16.get('loadS'), '{:.1f}')} / {fmt(f16.get('firstStepS'), '{:.2f}')}")
print(f"* ours: nvidia-smi's peak (50 ms sampling) while our fp16 process ran; diffusers: the device's used memory (NVML)")
print(f"  right after its fp16 steps, before its fp32 comparison step (nvidia-smi's peak over its whole script, fp32")
print(f"  included: {fmt(mib(md), '{}')} MiB); both minus the memory used before the script.")
if du is None and mib(md) is not None:
    print("  diffusers' Python had no NVML (nvidia-ml-py): no diffusers figure comparable to ours")
EOF
echo "bench/gpu.sh: done in $((SECONDS - T0)) s"
[ "$OURS_OK" = 1 ] || exit 1
