"""Each function's execution role, as the template gives it once SAM has translated it, made in moto.

With IAM enforced (:func:`iam_enforced`) moto checks each request's signature and the caller's identity
policies, but not the whole of a policy (docs/decisions/local-0004-iam-enforced.md): it matches S3 and
SQS statements against the resource's ARN, every other service's only against Resource "*", and it
evaluates no conditions. So each statement is made here as moto can check it:

- a statement whose actions are not all s3: or sqs: gets Resource "*" (its actions are still checked);
- Condition blocks are left out;
- an SQS action comes with its batch form (SQS authorises SendMessageBatch as SendMessage; moto checks
  the batch action by its own name);
- s3:DeleteObject on a bucket's objects also applies to the bucket's ARN (moto checks DeleteObjects once,
  against the bucket; S3 checks each key).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.core.authorization import enable_iam_authentication
from moto.dynamodb.responses import DynamoHandler
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from photoveil.local.account import REGION, STACK_NAME, Credentials
from photoveil.local.intrinsics import Resolver
from photoveil.local.patching import PatchWhileEntered
from photoveil.local.s3answers import s3_answers_as_s3
from photoveil.local.s3tagging import s3_tagging_as_s3
from photoveil.local.specs import TemplateError
from photoveil.local.template import load_template, referenced_id, resolver

SAM_CODE_URI = "s3://photoveil-artifacts/code.zip"  # the shape `sam package` leaves; never fetched
ADMIN_USER = f"{STACK_NAME}-local-admin"
OPERATOR_USER = f"{STACK_NAME}-local-operator"
OPERATOR_POLICY = "OperatorPolicy"  # the template's policy for `photoveil admin`
ALLOW_EVERYTHING = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
_CHECKED_BY_RESOURCE = ("s3:", "sqs:", "dynamodb:")
_BATCH_ACTIONS = {
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}


def translate(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """What CloudFormation's AWS::Serverless transform makes of TEMPLATE, computed offline.

    samtranslator needs a region (for ARNs) but never calls AWS for a template whose functions have
    explicit roles; CodeUri must look like an S3 URI, as it does after `sam package`.
    """
    sam = json.loads(json.dumps(template))  # a copy, in plain dicts and lists
    sam.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = SAM_CODE_URI
    for resource in sam["Resources"].values():
        if resource.get("Type") == "AWS::Serverless::Function" and "CodeUri" in resource.get(
            "Properties", {}
        ):
            resource["Properties"]["CodeUri"] = SAM_CODE_URI
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    return translator.translate(sam, parameter_values=parameters or {}, get_managed_policy_map=dict)


@dataclass(frozen=True)
class RoleSpec:
    """A function's execution role, its statements as moto can check them."""

    logical_id: str
    name: str
    function: str  # the function's logical id: the role session's name
    trust_policy: dict[str, Any]
    policies: dict[str, dict[str, Any]]  # inline policy name -> document


def read_function_roles(
    path: Path, parameters: dict[str, str] | None = None, names: dict[str, str] | None = None
) -> dict[str, RoleSpec]:
    """Each function's execution role in the template at PATH, by the function's logical id.

    ``parameters`` as `sam deploy --parameter-overrides` gives them; ``names``: see template.resolver.
    """
    return function_roles(load_template(path), parameters, names)


def function_roles(
    template: dict[str, Any], parameters: dict[str, str] | None = None, names: dict[str, str] | None = None
) -> dict[str, RoleSpec]:
    """Each function's execution role in TEMPLATE as SAM translates it, by the function's logical id."""
    translated = translate(template, parameters)
    resolve = resolver(translated, parameters, names)
    resources = translated["Resources"]
    roles = {}
    for lid, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        if "Condition" in resource and not resolve.condition(resource["Condition"]):
            continue
        role_id = referenced_id(resource["Properties"].get("Role")) or ""
        if resources.get(role_id, {}).get("Type") != "AWS::IAM::Role":
            raise TemplateError(f"function {lid}: its Role is not an AWS::IAM::Role of the template")
        roles[lid] = _role_spec(role_id, resources[role_id].get("Properties") or {}, lid, resolve)
    return roles


def read_operator_policy(
    path: Path, parameters: dict[str, str] | None = None, names: dict[str, str] | None = None
) -> dict[str, Any]:
    """The template's OperatorPolicy document (what `photoveil admin` needs), as moto can check it."""
    translated = translate(load_template(path), parameters)
    resource = translated["Resources"].get(OPERATOR_POLICY) or {}
    if resource.get("Type") != "AWS::IAM::ManagedPolicy":
        raise TemplateError(f"the template has no AWS::IAM::ManagedPolicy {OPERATOR_POLICY}")
    document = resolver(translated, parameters, names)(resource["Properties"]["PolicyDocument"])
    statements = [local for s in _as_list(document["Statement"]) for local in local_statements(s)]
    return document | {"Statement": statements}


def _role_spec(logical_id: str, props: dict[str, Any], function: str, resolve: Resolver) -> RoleSpec:
    if props.get("ManagedPolicyArns"):
        raise TemplateError(
            f"role {logical_id}: managed policies cannot be made locally (moto does not know AWS's own); "
            "give the role inline Policies"
        )
    policies = {}
    for policy in resolve(props.get("Policies")) or []:
        document = policy["PolicyDocument"]
        statements = [local for s in _as_list(document["Statement"]) for local in local_statements(s)]
        policies[policy["PolicyName"]] = document | {"Statement": statements}
    return RoleSpec(
        logical_id=logical_id,
        name=resolve(props.get("RoleName")) or f"{STACK_NAME}-{logical_id}",
        function=function,
        trust_policy=resolve(props["AssumeRolePolicyDocument"]),
        policies=policies,
    )


def local_statements(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """STATEMENT as moto can check it (see the module's docstring): one statement, or two."""
    local = {key: value for key, value in statement.items() if key != "Condition"}
    actions = _as_list(statement.get("Action"))
    if "NotAction" in statement or not all(a.lower().startswith(_CHECKED_BY_RESOURCE) for a in actions):
        return [local | {"Resource": "*"}]
    resources = _as_list(statement.get("Resource"))
    if not resources or None in resources:
        raise TemplateError(
            f"statement {statement.get('Sid', actions)}: its Resource did not resolve locally"
        )
    local["Action"] = actions + [_BATCH_ACTIONS[a] for a in actions if a in _BATCH_ACTIONS]
    buckets = sorted(
        {arn.split("/", 1)[0] for arn in resources if arn.startswith("arn:aws:s3:::") and "/" in arn}
    )
    if statement.get("Effect") == "Allow" and "s3:DeleteObject" in actions and buckets:
        return [local, {"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": buckets}]
    return [local]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value is not None else []


def create_admin(iam: Any) -> Credentials:
    """An IAM user allowed everything: the stack's own clients and the tests' (what the console would be)."""
    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(
        UserName=ADMIN_USER, PolicyName="everything", PolicyDocument=json.dumps(ALLOW_EVERYTHING)
    )
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def create_operator(iam: Any, policy: dict[str, Any]) -> Credentials:
    """An IAM user with exactly POLICY (read_operator_policy): whom `photoveil admin` signs as locally."""
    iam.create_user(UserName=OPERATOR_USER)
    iam.put_user_policy(UserName=OPERATOR_USER, PolicyName=OPERATOR_POLICY, PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
    return Credentials(key["AccessKeyId"], key["SecretAccessKey"])


def create_role(iam: Any, sts: Any, role: RoleSpec) -> Credentials:
    """Make ROLE and assume it, as Lambda does for each of the function's execution environments.

    Call it before IAM is enforced: moto would check the trust policy against the caller, and only
    Lambda's service principal is trusted.
    """
    arn = iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust_policy))["Role"][
        "Arn"
    ]
    for name, document in role.policies.items():
        iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=json.dumps(document))
    keys = sts.assume_role(RoleArn=arn, RoleSessionName=role.function)["Credentials"]
    return Credentials(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"])


@contextmanager
def iam_enforced() -> Iterator[None]:
    """moto checks every request against the caller's IAM policies while this lasts (process-wide), a
    DynamoDB request against its table's ARN as AWS does, and its S3 answers a missing key and checks a
    copy's source (photoveil.local.s3answers) and the tags an object is written with (s3tagging) as S3
    does."""
    with enable_iam_authentication(), s3_answers_as_s3(), s3_tagging_as_s3(), _DYNAMODB_BY_TABLE.entered():
        yield


def _dynamodb_table_arn(handler: DynamoHandler) -> str:
    """The ARN of the table a DynamoDB request names, as moto's SQS handler names its queue's; "*" for a
    request naming none (ListTables; batch and transaction calls name several, and the app makes none).

    moto authorises a request against the resource its handler's ``_determine_resource`` gives, and its
    DynamoDB handler has none, so without this any table's statement would allow every table.
    """
    params = handler.body if isinstance(handler.body, dict) else {}
    name = params.get("TableName")
    if not isinstance(name, str) or not name:
        return "*"
    if name.startswith("arn:"):  # DynamoDB takes a table's ARN in place of its name
        return name
    return f"arn:aws:dynamodb:{handler.region}:{handler.current_account}:table/{name}"


# moto asks a handler for the resource it authorises a request against; its DynamoDB handler has none, so
# while IAM is enforced it is given _dynamodb_table_arn, and loses it again when the last block leaves.
_DYNAMODB_BY_TABLE = PatchWhileEntered(DynamoHandler, "_determine_resource", lambda _: _dynamodb_table_arn)
