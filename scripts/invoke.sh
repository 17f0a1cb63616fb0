#!/usr/bin/env bash
# `make invoke`, `make invoke-photo`, `make invoke-check`: the template's functions in their arm64 Lambda
# containers (`sam local invoke`) against the local stack, each outcome checked (photoveil_dev.invoke;
# events/README.md says what each events/ file does and what is checked).
#
#   scripts/invoke.sh event BlurFunction events/sqs_s3_put.json   # one function on one events/ file
#   scripts/invoke.sh event "" events/sqs_s3_put.json             # the same: the file's own function
#   scripts/invoke.sh photo [PHOTO]                                # a photo end to end, function after function
#   scripts/invoke.sh check                                        # every events/ file, then a photo (CI)
#
# Against `make run`'s stack if it runs with no workers of its own (`make run WORKERS=0`), else against a
# stack started for the run. With a Docker engine, SAM pulls the real Lambda image. With none, on this
# project's CI (or with PHOTOVEIL_LAMBDA_STANDIN=1), scripts/lambda_standin.sh provides the engine and a
# stand-in image, and runs this script again under it: it stops the engine when no run uses it any more.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0

case "${1:-}" in
  check | photo | event) ARGS=("$@") ;;
  *) ARGS=(event "$@") ;;
esac

if [[ -z ${PHOTOVEIL_STANDIN_RUN:-} ]]; then
  # FN and EVENT, and whether the containers can be given a way to the stack: said before anything is
  # installed, started or built.
  .venv/bin/python -m photoveil_dev.invoke --preflight "${ARGS[@]}"
  wanted=0
  bash scripts/lambda_standin.sh wanted || wanted=$?
  case $wanted in
    0) PHOTOVEIL_STANDIN_RUN=1 exec bash scripts/lambda_standin.sh run bash scripts/invoke.sh "$@" ;;
    1) ;;  # a Docker engine answers: SAM uses it, and pulls the real image
    *) exit "$wanted" ;;
  esac
fi

BUILT=.aws-sam/build/template.yaml
# What `sam build` reads: an edit to any of it since the last build is built before it is invoked.
BUILD_INPUTS=(template.yaml pyproject.toml src/Makefile src/photoveil build-support frontend)

stale_build() {
  [[ ! -f $BUILT ]] ||
    [[ -n $(find "${BUILD_INPUTS[@]}" -type f -newer "$BUILT" ! -path '*/__pycache__/*' -print -quit) ]]
}

# CI builds from a fresh clone; elsewhere only what changed since the last build (the functions side by
# side: 16 s against 38 s one after another, measured here).
if [[ ${1:-} == check ]] || stale_build; then
  start=$SECONDS
  bash scripts/build.sh --parallel
  echo "    sam build: $((SECONDS - start)) s"
fi
exec .venv/bin/python -m photoveil_dev.invoke "${ARGS[@]}"
