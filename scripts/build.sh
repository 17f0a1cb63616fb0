#!/usr/bin/env bash
# `make build`: build both Lambda artifacts with `sam build` (no Docker needed) and print their sizes.
#
# aws-sam-cli lives in its own venv (.venv-sam): its pins (boto3, cfn-lint, ...) clash with the project's.
# The artifacts are arm64 / CPython 3.13 whatever this machine is: src/Makefile pip-installs aarch64 wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

SAM_CLI_VERSION=1.170.0
SAM_VENV=.venv-sam
MODEL=src/photoveil/models/centerface-int8.onnx  # derived by fetch_model.py from centerface.onnx
BUILD_DIR=.aws-sam/build
LAMBDA_LIMIT_BYTES=$((250 * 1024 * 1024))  # Lambda's unzipped package limit (layers included)
# Our budget: 80 % of it, room for a library upgrade without a surprise at deploy time.
BUDGET_BYTES=$((200 * 1024 * 1024))
export SAM_CLI_TELEMETRY=0

ensure_sam() {
  local stamp="$SAM_VENV/.sam-$SAM_CLI_VERSION"
  [[ -f "$stamp" ]] && return
  echo "==> installing aws-sam-cli==$SAM_CLI_VERSION into $SAM_VENV (once)"
  python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
  touch "$stamp"
}

ensure_model() {
  [[ -s "$MODEL" ]] && return
  if [[ -f scripts/fetch_model.py && -x .venv/bin/python ]]; then
    echo "==> fetching the CenterFace model (scripts/fetch_model.py)"
    .venv/bin/python scripts/fetch_model.py --dest src/photoveil/models/centerface.onnx
  else
    echo "$MODEL is missing: run \`make install\` first" >&2
    exit 1
  fi
}

ensure_sam
ensure_model

echo "==> sam build (BuildMethod: makefile, see src/Makefile)"
# src/Makefile runs pip with this interpreter (any Python >= 3.11 with pip will do).
PYTHON="$PWD/$SAM_VENV/bin/python" "$SAM_VENV/bin/sam" build --template-file template.yaml --build-dir "$BUILD_DIR" "$@"

echo "==> artifact sizes (unzipped)"
status=0
# Every function the template builds (sam build writes one folder each), so a new one cannot slip past.
for dir in "$BUILD_DIR"/*/; do
  dir="${dir%/}"
  fn="${dir##*/}"
  bytes=$(du -sb "$dir" | cut -f1)
  printf '  %-19s %6.1f MB  (%d%% of the 200 MB budget, %d%% of Lambda'"'"'s 250 MB)\n' "$fn" \
    "$(awk -v b="$bytes" 'BEGIN {print b / 1048576}')" $((bytes * 100 / BUDGET_BYTES)) $((bytes * 100 / LAMBDA_LIMIT_BYTES))
  if (( bytes > BUDGET_BYTES )); then
    echo "  ERROR: $fn exceeds the 200 MB unzipped budget" >&2; status=1
  fi
done
# The API, the site publisher and the mail events handler stay light (no image stack); the variants
# function has no face model.
for heavy in cv2 numpy PIL pillow_heif photoveil/models; do
  for fn in ApiFunction SiteContentFunction MailEventsFunction; do
    if [[ -e "$BUILD_DIR/$fn/$heavy" ]]; then
      echo "  ERROR: $fn contains $heavy" >&2; status=1
    fi
  done
done
# The worker's image core does its pixel work with OpenCV (docs/decisions/0017).
if [[ ! -e "$BUILD_DIR/BlurFunction/cv2" ]]; then
  echo "  ERROR: BlurFunction lacks cv2" >&2; status=1
fi
for heavy in PIL pillow_heif photoveil/models; do
  if [[ -e "$BUILD_DIR/VariantsFunction/$heavy" ]]; then
    echo "  ERROR: VariantsFunction contains $heavy" >&2; status=1
  fi
done
[[ -s "$BUILD_DIR/BlurFunction/photoveil/models/centerface-int8.onnx" ]] || { echo "  ERROR: BlurFunction lacks the model" >&2; status=1; }
# What src/Makefile stripped from the worker must not be something a library left behind needs.
.venv/bin/python tools/check_artifact.py "$BUILD_DIR/BlurFunction" || status=1
exit $status
