#!/usr/bin/env bash
# `make deploy`: build, deploy the stack, then publish the site with the stack's API URL.
#
#   1. scripts/build.sh (skip with SKIP_BUILD=1)
#   2. `sam deploy --guided` the first time (or GUIDED=1), else `sam deploy` with samconfig.toml's answers
#   3. frontend/config.json {"apiUrl": <ApiUrl output>}, `aws s3 sync frontend/` to the SiteBucket,
#      and a CloudFront invalidation so the new site is live at once.
#
# Needs AWS credentials and the AWS CLI (`aws`); the stack name and region come from samconfig.toml
# (override with STACK_NAME / AWS_REGION).
set -euo pipefail
cd "$(dirname "$0")/.."
export SAM_CLI_TELEMETRY=0
SAM=.venv-sam/bin/sam

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

[[ "${SKIP_BUILD:-0}" == 1 ]] || bash scripts/build.sh

if [[ "${GUIDED:-0}" == 1 ]] || ! aws cloudformation describe-stacks --stack-name "$STACK_NAME" >/dev/null 2>&1; then
  echo "==> sam deploy --guided (answers are saved to samconfig.toml)"
  "$SAM" deploy --guided --stack-name "$STACK_NAME" --region "$AWS_REGION"
else
  echo "==> sam deploy (stack $STACK_NAME in $AWS_REGION, settings from samconfig.toml)"
  "$SAM" deploy --stack-name "$STACK_NAME" --region "$AWS_REGION"
fi

output() {
  aws cloudformation describe-stacks --stack-name "$STACK_NAME" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text
}
API_URL=$(output ApiUrl)
SITE_BUCKET=$(output SiteBucketName)
DISTRIBUTION_ID=$(output DistributionId)
SITE_URL=$(output SiteUrl)

echo "==> frontend/config.json -> $API_URL"
python3 -c 'import json, sys; json.dump({"apiUrl": sys.argv[1]}, open("frontend/config.json", "w"))' "$API_URL"

echo "==> syncing frontend/ to s3://$SITE_BUCKET"
aws s3 sync frontend/ "s3://$SITE_BUCKET/" --delete --exclude ".*"
aws cloudfront create-invalidation --distribution-id "$DISTRIBUTION_ID" --paths "/*" --query Invalidation.Id --output text

echo "PhotoVeil is live at $SITE_URL (API $API_URL)"
