#!/usr/bin/env bash
# CI step of the third-party plugin example: install registry-geoextras into the project's venv, run its own
# tests, check and run its pipeline, uninstall it, and fail unless the registry is exactly as it was before.
# Run from the repository root:  bash examples/thirdparty-plugin/ci.sh   (PYTHON=... picks another interpreter)
set -euo pipefail

PY=${PYTHON:-.venv/bin/python}
PKG=examples/thirdparty-plugin
WORK=$(mktemp -d)
installed=0
cleanup() {
    if [ "$installed" = 1 ]; then "$PY" -m pip uninstall -q -y registry-geoextras || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if "$PY" -m pip show registry-geoextras >/dev/null 2>&1; then
    echo "ci.sh: registry-geoextras is already installed in $PY's environment; uninstall it first" >&2
    exit 1
fi

# What the registry lists without the plugin (plugins without their import times, which vary).
snapshot() {
    "$PY" -m registry_core list --json > "$WORK/list.$1.json"
    "$PY" -m registry_core plugins --json | "$PY" -c \
        'import json, sys; rows = json.load(sys.stdin); [r.pop("import_seconds", None) for r in rows]; print(json.dumps(rows, indent=1))' \
        > "$WORK/plugins.$1.json"
}
snapshot before

# Its dependencies must already be here: --no-deps keeps pip from touching any other package (torch above all).
"$PY" - <<'PYEOF'
import importlib.metadata as md
import sys
missing = []
for dist in ("registry-core", "registry-gfm"):
    try:
        md.version(dist)
    except md.PackageNotFoundError:
        missing.append(dist)
if missing:
    sys.exit(f"ci.sh: registry-geoextras needs {', '.join(missing)} installed first (make setup)")
PYEOF
echo "== pip install --no-deps $PKG"
"$PY" -m pip install -q --no-deps "$PKG"
installed=1
rm -rf "$PKG/build" "$PKG"/*.egg-info  # what the in-tree build left behind

echo "== its datacube: the Landsat 7 scene ingested into $WORK"
"$PY" -m registry_core ingest examples/lsat7-ingest.toml --set "data.store=$WORK/datacube.zarr"

echo "== its own tests"
GEOEXTRAS_LSAT7_STORE="$WORK/datacube.zarr" "$PY" -m pytest -q -p no:cacheprovider "$PKG/tests"

echo "== check and run $PKG/pipeline.toml"
"$PY" -m registry_core show tokenizer gfm:patch | grep -q "replaced by: geoextras:patch"
"$PY" -m registry_core check "$PKG/pipeline.toml"
"$PY" -m registry_core run "$PKG/pipeline.toml" --out "$WORK/run" --set "data.store=$WORK/datacube.zarr" \
    --set train.steps=10 --set train.eval_every=10

echo "== pip uninstall registry-geoextras"
"$PY" -m pip uninstall -q -y registry-geoextras
installed=0
snapshot after
for what in list plugins; do
    if ! diff -u "$WORK/$what.before.json" "$WORK/$what.after.json"; then
        echo "ci.sh: FAILED: \`registry_core $what --json\` differs after uninstalling registry-geoextras" >&2
        exit 1
    fi
done
echo "ci.sh: ok (registry-geoextras installed, tested, run and uninstalled; the registry is as before)"
