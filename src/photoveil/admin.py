"""`photoveil admin reports | takedown JOB_ID | restore JOB_ID`: the operator's review of reported photos.

Against the running local stack (its DATA_DIR/stack.json names the resources and the operator's keys:
an IAM user with exactly the stack's OperatorPolicy) or a deployed stack (``--stack NAME``: its outputs
name the resources; the operator's own AWS credentials, from the usual boto3 chain, which need that same
policy: docs/deploy.md). Every action is logged with the job id (photoveil.service.review).

``takedown`` and ``restore`` ask for confirmation on a terminal; ``--yes`` answers it. Without a terminal
(a script, a pipe) they refuse unless given ``--yes``: nothing irreversible happens because a script
forgot to say it meant it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_DECLINED, EXIT_USAGE, EXIT_REFUSED, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
JOB_ID_PATTERN = "[0-9a-f]{32}"


class StackNotFoundError(Exception):
    """No running local stack, or no such deployed stack."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="photoveil admin",
        description="Review reported photos: list them, restore one, or take one down for good.",
        epilog=(
            "exit codes: 0 ok, 1 not confirmed, 2 usage (also takedown or restore without a terminal and "
            "without --yes), 3 refused (e.g. restoring a photo not withdrawn), 4 no stack"
        ),
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--stack", metavar="NAME", help="a deployed stack (your own AWS credentials)")
    where.add_argument(
        "--data-dir", type=Path, default=Path(".local"), help="the running local stack's (default: .local)"
    )
    parser.add_argument("--region", help="the deployed stack's region (default: your AWS configuration's)")
    commands = parser.add_subparsers(dest="action", required=True, metavar="{reports,takedown,restore}")
    listing = commands.add_parser("reports", help="withdrawn and reported photos, with reasons and counts")
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    for name, text in (
        ("takedown", "remove a photo for good: it can never publish again (its variants and edits neither)"),
        ("restore", "publish a withdrawn photo again, its reports reviewed (they cannot withdraw it again)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("job_id", metavar="JOB_ID", type=_job_id)
        command.add_argument(
            "--yes", action="store_true", help="do it without asking (needed when stdin is not a terminal)"
        )
    return parser


def _job_id(text: str) -> str:

    if not re.fullmatch(JOB_ID_PATTERN, text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a job id (32 lowercase hexadecimal characters)")
    return text


def local_dependencies(data_dir: Path) -> Any:
    """Dependencies for the running local stack, signing as its admin."""
    from photoveil.dependencies import Dependencies
    from photoveil.local.account import Credentials, client

    state_file = data_dir / "stack.json"
    if not state_file.is_file():
        raise StackNotFoundError(f"no running local stack ({state_file} is missing): start `make run`")
    state = json.loads(state_file.read_text())
    keys = Credentials.from_json(state["operatorCredentials"])  # exactly the stack's OperatorPolicy
    names = {"jobs": state["jobsTable"], "uploads": state["uploadsBucket"], "blurred": state["blurredBucket"]}
    settings = _settings(names, site=state["site"], queue_url=state["queueUrl"], distribution_id="")
    clients = {name: client(name, state["moto"], keys) for name in ("s3", "dynamodb", "sqs")}
    return Dependencies(settings, **clients)


def stack_dependencies(stack: str, region: str | None) -> Any:
    """Dependencies for a deployed stack, named by its outputs, with the caller's own credentials."""
    import boto3
    from botocore.exceptions import ClientError

    from photoveil.dependencies import Dependencies

    session = boto3.session.Session(region_name=region)
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except ClientError as error:
        raise StackNotFoundError(
            f"stack {stack!r}: {error.response['Error'].get('Message', error)}"
        ) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    names = {
        "jobs": outputs["JobsTableName"],
        "uploads": outputs["UploadsBucketName"],
        "blurred": outputs["BlurredBucketName"],
    }
    settings = _settings(
        names,
        site=outputs["SiteUrl"],
        queue_url=outputs["BlurQueueUrl"],
        distribution_id=outputs["DistributionId"],
    )
    clients = {name: session.client(name) for name in ("s3", "dynamodb", "sqs", "cloudfront")}
    return Dependencies(settings, **clients)


def _settings(names: dict[str, str], *, site: str, queue_url: str, distribution_id: str) -> Any:
    from photoveil.settings import Settings

    return Settings(
        jobs_table=names["jobs"],
        uploads_bucket=names["uploads"],
        blurred_bucket=names["blurred"],
        public_base_url=site.rstrip("/"),
        sender_email="",
        detector="centerface",
        blur_style="gaussian",
        max_upload_bytes=25 * 1024 * 1024,
        max_pixels=50_000_000,
        upload_url_expires_s=300,
        photo_ttl_days=30,
        queue_visibility_timeout_s=180,
        queue_max_receive_count=5,
        blur_queue_url=queue_url,
        distribution_id=distribution_id,
        # The operator sends no mail and is charged to no quota: what only the API and the worker use.
        mail_configuration_set="",
        quotas_table="",
        uploads_per_client_hour=0,
        uploads_per_client_day=0,
        owner_actions_per_client_hour=0,
        owner_actions_per_day=0,
        emails_per_recipient_day=0,
        uploads_per_day=0,
    )


def print_reports(photos: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"photos": photos}, indent=2))
        return
    if not photos:
        print("no reported photos")
    for photo in photos:
        reasons = ", ".join(f"{reason} x{count}" for reason, count in sorted(photo["reasons"].items()))
        unstored = photo["reporters"] - photo.get("stored", photo["reporters"])
        print(
            f"{photo['jobId']}  {photo['status']:<9}  {photo['reporters']} new report(s), "
            f"{photo['networks']} network(s) counting: {reasons or '-'}"
            + (f" ({unstored} past the first {photo['stored']}: counted, notes not kept)" if unstored else "")
        )
        for note in photo["notes"]:
            print(f"    {printable(note)}")


def printable(text: str) -> str:
    """TEXT on one line, as typed by a stranger: line breaks, terminal escapes and other invisible or
    reordering characters (bidi overrides) shown as escapes, so a note cannot fake a line of the table or
    drive the terminal."""
    return "".join(c if c.isprintable() else ("\\n" if c == "\n" else f"\\u{ord(c):04x}") for c in text)


def confirmed(question: str, *, assume_yes: bool) -> bool | None:
    """The operator's answer to QUESTION: True with --yes or a "y", False for anything else, None when
    there is no terminal to ask on (the caller refuses: a script must say --yes)."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        return None
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    from photoveil.service.review import ReviewError, reported_photos, restore, take_down

    deps = stack_dependencies(args.stack, args.region) if args.stack else local_dependencies(args.data_dir)
    if args.action == "reports":
        print_reports(reported_photos(deps), args.json)
        return EXIT_OK
    answer = confirmed(QUESTIONS[args.action].format(job_id=args.job_id), assume_yes=args.yes)
    if answer is None:
        print(
            f"photoveil admin {args.action}: stdin is not a terminal, so it cannot ask; "
            f"add --yes to {args.action} {args.job_id} (nothing was changed)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if not answer:
        print(f"photoveil admin {args.action}: not confirmed; nothing was changed", file=sys.stderr)
        return EXIT_DECLINED
    try:
        if args.action == "takedown":
            before = take_down(args.job_id, deps)
            print(f"taken down: {args.job_id} (was {before.status}); it can never be published again")
        else:
            restore(args.job_id, deps)
            print(f"restored: {args.job_id} is public again, its reports reviewed")
    except ReviewError as error:
        print(f"photoveil admin {args.action}: {error}", file=sys.stderr)
        return EXIT_REFUSED
    return EXIT_OK


QUESTIONS = {
    "takedown": (
        "Take down {job_id} for good? Every copy PhotoVeil holds (the photo, its sizes, the withheld copy, "
        "the record of it) is deleted and nothing can restore it: preserve first whatever the law asks you "
        "to keep (docs/deploy.md)."
    ),
    "restore": (
        "Publish {job_id} again? Its link works again for anyone who has it, until the expiry it always "
        "had (the restored copy is deleted then, not 30 days from now)."
    ),
}


def main(argv: Sequence[str]) -> int:
    """`photoveil admin ...`; returns the exit code."""
    args = build_parser().parse_args(list(argv))
    try:
        return run(args)
    except StackNotFoundError as error:
        print(f"photoveil admin: {error}", file=sys.stderr)
        return EXIT_NOT_FOUND
