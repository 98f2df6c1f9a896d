#!/usr/bin/env bash
# The GPU check: every CUDA test and the GPU benchmarks, one JSON (bench/gpu_check.py).
#
#   bench/gpu_check.sh               on a machine with one CUDA GPU (at most 8 minutes on an H100)
#   bench/gpu_check.sh --dry-run     on any machine: checks the script, the tests' collection
#                                    and the JSON writer without a GPU (run in CI)
#
# Extra arguments go to bench/gpu_check.py (--out PATH, --budget SECONDS). The
# JSON goes to --out, else $OUT/gpu_check.json when $OUT is set, else
# bench/results/gpu_check.json. Nothing is installed from the network: the
# interpreter is $PYTHON, else the project's .venv, else python3 (the first
# that imports torch); the C++ extension is built in place from installed tools
# only when it is missing (the GPU stages do not need it).
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  local c
  for c in "${PYTHON:-}" .venv/bin/python python3 python; do
    [ -n "$c" ] || continue
    command -v "$c" >/dev/null 2>&1 || [ -x "$c" ] || continue
    if "$c" -c "import torch" >/dev/null 2>&1; then
      echo "$c"
      return 0
    fi
  done
  return 1
}

if ! PY="$(pick_python)"; then
  echo "gpu_check: no Python with torch found (tried \$PYTHON, .venv/bin/python, python3, python)" >&2
  exit 1
fi
export PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# the real kernels on a GPU, the interpreter only in the dry run
if [ "${1:-}" != "--dry-run" ]; then unset TRITON_INTERPRET; fi
exec "$PY" bench/gpu_check.py "$@"
