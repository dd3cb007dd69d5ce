#!/usr/bin/env bash
# The one command of the GPU check, run on the device machine from the repository root with .gpu/ carried
# (python -m scripts.gpu_prepare fills .gpu/ here first). Installs the carried wheels into /tmp/site, puts the
# work tree on the path and runs benchmarks.gpu; its results.json and gpu.log land in $OUT.
set -o pipefail
OUT=${OUT:-out/gpu}
mkdir -p "$OUT"
ls .gpu/wheels/*.whl >/dev/null 2>&1 || { echo "no wheels in .gpu/wheels: run python -m scripts.gpu_prepare and carry .gpu" | tee "$OUT/console.log"; exit 1; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/wheels/*.whl \
    2>&1 | tee "$OUT/install.log" || echo "the wheels did not all install (install.log); the check goes on: its env part lists what is missing"
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
nvidia-smi 2>&1 | head -20 | tee "$OUT/console.log"
python3 -m benchmarks.gpu --out "$OUT" --data .gpu/data/tinyshakespeare.txt "$@" 2>&1 | tee -a "$OUT/console.log"
