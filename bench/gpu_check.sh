#!/usr/bin/env bash
# One-shot GPU check (issue 10): the imagery benchmarks on a CUDA machine, run from a bare copy of the tree.
#
#     bash bench/gpu_check.sh            # from the repository root; PYTHON=... to pick another interpreter
#
# Installs nothing. Uses the machine's python3 (torch and transformers must be there already). The
# packages of this tree are put on PYTHONPATH; when they are not installed (no entry points), the gfm
# plugin is named through REGISTRY_CORE_PLUGINS. registry_core needs pluggy (pure Python): if python3
# lacks it, carry the venv's copy with the tree (.venv/lib/python3.*/site-packages/pluggy) and it is used.
# Each benchmark runs under its own timeout so the whole script stays well inside 10 minutes.
set -u
cd "$(dirname "$0")/.." || exit 1
PY=${PYTHON:-python3}
LIMIT=${BENCH_TIMEOUT:-150}  # seconds per benchmark command

echo "== GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
    echo "nvidia-smi: not found"
fi

export PYTHONPATH="$PWD:$PWD/plugins/llm:$PWD/plugins/gfm${PYTHONPATH:+:$PYTHONPATH}"

echo "== python"
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "$PY cannot import torch: nothing to benchmark here (this script installs nothing)"
    exit 1
fi
"$PY" -c "
import sys, torch
print('python', sys.version.split()[0], '| torch', torch.__version__, '| CUDA', torch.version.cuda,
      '| cuda available', torch.cuda.is_available(), '| devices', torch.cuda.device_count())
try:
    import transformers
    print('transformers', transformers.__version__)
except ImportError:
    print('transformers: NOT INSTALLED')
"
HAVE_HF=1
"$PY" -c "import transformers" 2>/dev/null || HAVE_HF=0

if ! "$PY" -c "import pluggy" 2>/dev/null; then
    carried=$(ls -d .venv/lib/python3*/site-packages/pluggy 2>/dev/null | head -n 1)
    if [ -n "$carried" ]; then
        shim=$(mktemp -d)
        ln -s "$PWD/$carried" "$shim/pluggy"
        export PYTHONPATH="$PYTHONPATH:$shim"
        echo "pluggy: not installed; using the carried copy $carried"
    else
        echo "pluggy: NOT INSTALLED and no carried copy (.venv/lib/python3.*/site-packages/pluggy);" \
             "registry_core cannot import, so the benchmarks of our models cannot run"
        exit 1
    fi
fi

# Installed plugins are found by entry point; a bare tree has none, so name the plugin's module.
if ! "$PY" -c "
import importlib.metadata as md, sys
sys.exit(0 if 'gfm' in {e.name for e in md.entry_points(group='registry_core')} else 1)
"; then
    export REGISTRY_CORE_PLUGINS="${REGISTRY_CORE_PLUGINS:-registry_gfm.plugin}"
    echo "registry-gfm is not installed: loading it as REGISTRY_CORE_PLUGINS=$REGISTRY_CORE_PLUGINS"
fi

run() {
    echo
    echo "== $*"
    timeout "$LIMIT" "$PY" "$@"
    rc=$?
    [ "$rc" -eq 124 ] && echo "(stopped after ${LIMIT}s)"
    [ "$rc" -ne 0 ] && echo "(exit status $rc)"
    return 0
}

if [ "$HAVE_HF" -eq 1 ]; then
    # the issue's config (batch 8): float32 with TF32 matmuls off and on, then bf16 autocast
    run bench/mae_step.py --device cuda
    run bench/mae_step.py --device cuda --dtype bfloat16
    # a batch that fills the GPU better, for scale
    run bench/mae_step.py --device cuda --dtype bfloat16 --batch 128 --steps 10 --rounds 5 --warmup 5
else
    echo
    echo "== bench/mae_step.py skipped: transformers is not installed for $PY (it is the comparison)"
fi

if [ -f bench/prithvi_encoder.py ]; then
    run bench/prithvi_encoder.py --device cuda
else
    echo
    echo "== bench/prithvi_encoder.py: not in this tree, skipped"
fi
