#!/usr/bin/env bash
# Creates (once) a virtualenv outside the repo with the pinned reference stack, then runs oracle scripts.
# Usage: tools/oracle/run.sh                 # every script, in order
#        tools/oracle/run.sh schedulers.py   # one script
#        tools/oracle/run.sh --venv-only     # only create the virtualenv (the torch benchmarks need it too)
# The fixtures land under tests/fixtures/; CI only reads them (it needs no Python).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${ORACLE_VENV:-$HOME/.cache/controlnet-oracle-venv}
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$venv/.requirements.txt"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.requirements.txt"
fi
[ "${1:-}" != "--venv-only" ] || { echo "oracle virtualenv ready: $venv"; exit 0; }
cd "$here/../.."
scripts=("$@")
# Every fixture writer, in dependency order (pipeline.py reads tiny_models.py's models and tokenizer.py's vocabulary).
# annotator_export.py is not one: it exports real annotator networks to ONNX and takes arguments (see its header).
# prompt_weighting.py is not in the list either: it needs LPW_SOURCE, diffusers' community lpw_stable_diffusion.py
# from a diffusers source checkout (see its header), which no wheel ships. rrdbnet.py needs basicsr, installed apart
# (see its header): run it by name. annotator_uniformer.py takes a ControlNet-v1-1-nightly checkout (or its git
# directory) as its argument: run it by name with that path.
all=(graph_ops.py random_noise.py schedulers.py tokenizer.py tiny_models.py checkpoints.py tokenizer_json.py single_file.py single_file_sd2.py
     alpha_inputs.py networks_demo.py networks_tome.py lora.py tome.py annotators.py annotator_face.py tflite_models.py annotator_iris.py
     annotator_checkpoints.py annotator_midas.py safety_checker.py clip_preprocess.py marian.py pipeline.py pipeline_inpaint9.py)
all+=(gpt2.py)  # enhance_prompt's tiny GPT-2 and its generate() ids (independent of the others)
[ ${#scripts[@]} -gt 0 ] || scripts=("${all[@]}")
for s in "${scripts[@]}"; do
  echo "oracle: $s"
  "$venv/bin/python" "$here/$s"
done
