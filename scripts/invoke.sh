#!/usr/bin/env bash
# `make invoke`, `make invoke-photo`, `make invoke-check`: the template's functions in their arm64 Lambda
# containers (`sam local invoke`) against the local stack, each outcome checked (photoveil_dev.invoke;
# events/README.md says what each events/ file does and what is checked).
#
#   scripts/invoke.sh BlurFunction events/sqs_s3_put.json   # one function on one events/ file
#   scripts/invoke.sh photo [PHOTO]                          # a photo end to end, function after function
#   scripts/invoke.sh check                                  # every events/ file, then a photo (CI)
#
# Against `make run`'s stack if it runs with no workers of its own (`make run WORKERS=0`), else against a
# stack started for the run. With a Docker engine, SAM pulls the real Lambda image. With none (this
# project's CI), scripts/lambda_standin.sh provides the engine and a stand-in image, and the engine it
# started is stopped when this ends.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0

case "${1:-}" in
  check | photo) ARGS=("$@") ;;
  *)
    FUNCTION=${1:-ApiFunction}
    EVENT=${2:-events/api_create_upload.json}
    [[ -f "$EVENT" ]] || { echo "no such event file: $EVENT (see events/)" >&2; exit 2; }
    ARGS=(event "$FUNCTION" "$EVENT")
    ;;
esac

if bash scripts/lambda_standin.sh wanted; then
  trap 'bash scripts/lambda_standin.sh stop' EXIT
  bash scripts/lambda_standin.sh ensure
  export SAM_SKIP_PULL_IMAGE=1  # the stand-in is the image; there is no registry to pull it from
fi

# Built once; `make build` again after changing the code. CI builds from a fresh clone (the functions side
# by side: 16 s against 38 s one after another, measured here).
if [[ ${1:-} == check || ! -f .aws-sam/build/template.yaml ]]; then
  start=$SECONDS
  bash scripts/build.sh --parallel
  echo "    sam build: $((SECONDS - start)) s"
fi
.venv/bin/python -m photoveil_dev.invoke "${ARGS[@]}"
