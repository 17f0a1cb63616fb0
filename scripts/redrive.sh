#!/usr/bin/env bash
# Move failed photos from BlurDLQ back to BlurQueue (`make redrive`).
#   scripts/redrive.sh            the running local stack (`make run`), found via .local/stack.json
#   scripts/redrive.sh aws [STACK] [REGION]
#                                 a deployed stack: SQS StartMessageMoveTask (default stack: from samconfig.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[[ -x $PY ]] || PY=python3

mode=${1:-local}
case "$mode" in
  local)
    exec "$PY" -m photoveil.local.redrive local "${DATA_DIR:-.local}"
    ;;
  aws)
    stack=${2:-${STACK_NAME:-}}
    if [[ -z $stack && -f samconfig.toml ]]; then
      stack=$(sed -n 's/^stack_name *= *"\(.*\)"/\1/p' samconfig.toml | head -n1)
    fi
    [[ -n $stack ]] || { echo "redrive: give the stack name: scripts/redrive.sh aws STACK" >&2; exit 2; }
    exec "$PY" -m photoveil.local.redrive aws "$stack" ${3:+"$3"}
    ;;
  *)
    echo "usage: scripts/redrive.sh [local | aws [STACK] [REGION]]" >&2
    exit 2
    ;;
esac
