#!/usr/bin/env bash
# The recipe regression test end to end (about 15 minutes on 2 cores):
#   1. run the quickstart and save its baseline;
#   2. check a deliberately worse recipe against it: exit 1, JUnit and Markdown written;
#   3. check the original recipe again: exit 0.
# Usage: benchmarks/recipe_regression.sh [OUT_DIR]   (default: reports/recipe-regression)
set -u
cd "$(dirname "$0")/.."
OUT=${1:-reports/recipe-regression}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
set -x
$BIN/overfit-lab run suites/quickstart.toml --output "$OUT/accepted" --quiet || exit 2
$BIN/overfit-lab baseline save "$OUT/accepted" --to "$OUT/baseline.json" || exit 2
$BIN/overfit-lab check benchmarks/recipes/quickstart_overfit.toml --baseline "$OUT/baseline.json" \
    --output "$OUT/worse" --junit "$OUT/worse.xml" --markdown "$OUT/worse.md" --quiet
echo "worse recipe: exit $?"
$BIN/overfit-lab check suites/quickstart.toml --baseline "$OUT/baseline.json" \
    --output "$OUT/again" --junit "$OUT/again.xml" --markdown "$OUT/again.md" --quiet
echo "original recipe: exit $?"
