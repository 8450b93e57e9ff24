#!/usr/bin/env bash
# How reports/gpu/ was made: the gate in all four dtypes on one GPU (the device tool of
# issue 16), from the working tree, with the JAX the machine has. Writes to $OUT:
# machine.txt, probes.txt (float64 and narrow-dtype probes), run-DTYPE.json and .err.
# Then, here: derivcheck merge is not needed (each dtype is a whole run); the report is
# drawn with `derivcheck report --from` on the joined runs (see reports/gpu/README.md).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
OUT=${OUT:-/tmp/derivcheck-gpu}
mkdir -p "$OUT"
{ date -u; nvidia-smi -L; python3 -c 'import jax, numpy, hypothesis; print("jax", jax.__version__, "numpy", numpy.__version__, "hypothesis", hypothesis.__version__); print(jax.devices())'; } > "$OUT/machine.txt" 2>&1
python3 - > "$OUT/probes.txt" 2>&1 <<'PY'
import time
import jax
jax.config.update("jax_enable_x64", True)
from derivcheck._narrow import narrow_arithmetic
from derivcheck._placement import computes_float64
device = jax.devices("gpu")[0]
print("device:", device, device.device_kind)
print("float64 probe:", computes_float64(device))
for dtype in ("bfloat16", "float16"):
    start = time.perf_counter()
    found = narrow_arithmetic("gpu", dtype)
    print(found.describe(), sorted(found.once_rounded), f"({time.perf_counter() - start:.1f} s)")
PY
# One process per dtype, side by side (16 cores): a dtype cut off by the limit costs only itself.
for dtype in float32 float64 bfloat16 float16; do
  ( start=$(date +%s)
    timeout "${DTYPE_LIMIT:-420}" python3 -c 'import sys; from derivcheck.cli import main; sys.exit(main())' \
      verify --device gpu --dtype "$dtype" --jobs 4 --format json > "$OUT/run-$dtype.json" 2> "$OUT/run-$dtype.err"
    echo "$dtype: exit $?, $(( $(date +%s) - start )) s" >> "$OUT/machine.txt" ) &
done
wait
cat "$OUT/machine.txt" "$OUT/probes.txt"
tail -n 3 "$OUT"/run-*.err
