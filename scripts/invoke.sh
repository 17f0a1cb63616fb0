#!/usr/bin/env bash
# `make invoke`: run one function on an events/ file with `sam local invoke` (needs Docker).
#
#   scripts/invoke.sh ApiFunction events/api_create_upload.json
#   scripts/invoke.sh BlurFunction events/sqs_s3_put.json
#
# Without Docker, run the same handlers on the same events in-process: `make run` (the local stack)
# or the functional tests (tests/functional) load these events/ files too.
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0

FUNCTION=${1:-ApiFunction}
EVENT=${2:-events/api_create_upload.json}
[[ -f "$EVENT" ]] || { echo "no such event file: $EVENT (see events/)" >&2; exit 2; }

if ! command -v docker >/dev/null || ! docker info >/dev/null 2>&1; then
  cat >&2 <<MSG
sam local invoke needs a running Docker (it runs the function in the Lambda arm64 image); none here.
Without Docker: \`make run\` serves the real handlers in-process against a local moto stack, and
\`.venv/bin/python -m pytest tests/functional\` runs both handlers on the events/ files.
MSG
  exit 3
fi

[[ -d .aws-sam/build/$FUNCTION ]] || bash scripts/build.sh
# env.json (optional, gitignored) overrides the function's environment, e.g. to point at real buckets.
ENV_ARGS=()
[[ -f env.json ]] && ENV_ARGS=(--env-vars env.json)
exec .venv-sam/bin/sam local invoke "$FUNCTION" --event "$EVENT" "${ENV_ARGS[@]}"
