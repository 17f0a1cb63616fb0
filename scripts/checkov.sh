#!/usr/bin/env bash
# Static security checks of template.yaml with checkov (in its own venv: its pins clash with boto3).
# Every finding is either fixed in the template or skipped there (Metadata: checkov: skip) with a reason.
#
#   scripts/checkov.sh            # human-readable report
#   scripts/checkov.sh -o json    # extra arguments go to checkov
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
VENV=.venv-checkov
stamp="$VENV/.checkov-$CHECKOV_VERSION"
if [[ ! -f "$stamp" ]]; then
  echo "==> installing checkov==$CHECKOV_VERSION into $VENV (once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
  touch "$stamp"
fi
exec "$VENV/bin/checkov" --file template.yaml --framework cloudformation --compact --skip-download "$@"
