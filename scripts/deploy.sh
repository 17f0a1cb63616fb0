#!/usr/bin/env bash
# `make deploy`: build and deploy the stack; the stack publishes the website itself (SiteContent).
#
#   1. scripts/build.sh (skip with SKIP_BUILD=1)
#   2. `sam deploy --guided` the first time (or GUIDED=1), else `sam deploy` with samconfig.toml's answers.
#      A stack whose first creation failed (ROLLBACK_COMPLETE) cannot be updated: it is deleted first.
#
# Needs AWS credentials and the AWS CLI (`aws`); the stack name and region come from samconfig.toml
# (override with STACK_NAME / AWS_REGION).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
SAM=${SAM:-.venv-sam/bin/sam}

samconfig() {  # samconfig() SECTION KEY -> value or empty
  python3 -c 'import sys, tomllib; c = tomllib.load(open("samconfig.toml", "rb"))
print(c.get("default", {}).get(sys.argv[1], {}).get("parameters", {}).get(sys.argv[2], ""))' "$1" "$2"
}
STACK_NAME=${STACK_NAME:-$(samconfig global stack_name)}
AWS_REGION=${AWS_REGION:-$(samconfig deploy region)}
export AWS_REGION AWS_DEFAULT_REGION=$AWS_REGION

command -v aws >/dev/null || { echo "the AWS CLI (aws) is required: https://docs.aws.amazon.com/cli/" >&2; exit 1; }
aws sts get-caller-identity --query Account --output text >/dev/null \
  || { echo "no usable AWS credentials (aws sts get-caller-identity failed)" >&2; exit 1; }

stack_status() {  # the stack's status, or NONE
  aws cloudformation describe-stacks --stack-name "$STACK_NAME" --query "Stacks[0].StackStatus" \
    --output text 2>/dev/null || echo NONE
}

STATUS=$(stack_status)
case "$STATUS" in
  ROLLBACK_COMPLETE)
    # The first creation failed and rolled back: CloudFormation accepts no update, only a delete.
    echo "==> stack $STACK_NAME is ROLLBACK_COMPLETE (its creation failed): deleting it before deploying again"
    aws cloudformation delete-stack --stack-name "$STACK_NAME"
    aws cloudformation wait stack-delete-complete --stack-name "$STACK_NAME"
    STATUS=NONE ;;
  *_IN_PROGRESS)
    echo "stack $STACK_NAME is $STATUS: wait for it to finish, then run make deploy again" >&2
    exit 1 ;;
esac

[[ "${SKIP_BUILD:-0}" == 1 ]] || bash scripts/build.sh

if [[ "${GUIDED:-0}" == 1 || "$STATUS" == NONE ]]; then
  echo "==> sam deploy --guided (answers are saved to samconfig.toml)"
  echo "    Answer y to \"ApiFunction has no authentication. Is this okay?\": the API is public by design"
  echo "    (no accounts); its default answer N stops the deploy."
  "$SAM" deploy --guided --stack-name "$STACK_NAME" --region "$AWS_REGION"
else
  echo "==> sam deploy (stack $STACK_NAME in $AWS_REGION, settings from samconfig.toml)"
  "$SAM" deploy --stack-name "$STACK_NAME" --region "$AWS_REGION"
fi

output() {
  aws cloudformation describe-stacks --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
echo "PhotoVeil is live at $(output SiteUrl) (API $(output ApiUrl)); the stack published the site itself."
