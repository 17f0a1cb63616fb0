"""`photoveil local ...`: run the whole product on this machine, or redrive its DLQ."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from photoveil.local.stack import LocalStack

EXIT_PORT_IN_USE = 3
EXIT_BAD_TEMPLATE = 5
EXIT_USAGE = 2

log = logging.getLogger("photoveil.local")


def _parser() -> argparse.ArgumentParser:
    from photoveil.local.stack import LocalOptions

    d = LocalOptions()
    parser = argparse.ArgumentParser(
        prog="photoveil local",
        description="Run PhotoVeil on 127.0.0.1 with no AWS account: moto (S3, SQS, DynamoDB, SES), "
        "a gateway for the site and the API, and blur workers running the real handlers.",
    )
    sub = parser.add_subparsers(dest="command")
    redrive = sub.add_parser("redrive", help="move every message from the local BlurDLQ back to BlurQueue")
    redrive.add_argument(
        "--data-dir", type=Path, default=d.data_dir, help="where the running stack wrote stack.json"
    )
    parser.add_argument(
        "--port", type=int, default=d.port, help="gateway port: site, API and /p/ (default %(default)s)"
    )
    parser.add_argument(
        "--moto-port",
        type=int,
        default=d.moto_port,
        help="moto's port (default: any free port; the browser posts uploads there)",
    )
    parser.add_argument(
        "--workers", type=int, default=d.workers, help="workers per queue-fed function (default %(default)s)"
    )
    parser.add_argument("--host", default=d.host, choices=["127.0.0.1"], help="bind address (127.0.0.1 only)")
    parser.add_argument(
        "--detector",
        default=d.detector,
        choices=["centerface", "rekognition", "both"],
        help="face detector (default %(default)s: in-process, no AWS needed)",
    )
    parser.add_argument(
        "--moderation",
        default=d.moderation,
        choices=["off", "rekognition"],
        help="moderation before publishing (default %(default)s: moto has no Rekognition; rekognition "
        "calls Amazon Rekognition with your own AWS credentials)",
    )
    parser.add_argument("--data-dir", type=Path, default=d.data_dir, help="local state: outbox/, stack.json")
    parser.add_argument("--template", type=Path, default=d.template, help="SAM template to mirror")
    parser.add_argument("--site-dir", type=Path, default=d.site_dir, help="the website to serve")
    parser.add_argument(
        "--sender-email", default=d.sender_email, help="verified SES sender (default %(default)s)"
    )
    parser.add_argument(
        "--parameter-overrides",
        nargs="+",
        default={},
        type=_parameter,
        action=_MergeParameters,
        metavar="KEY=VALUE",
        help="template parameters as `sam deploy --parameter-overrides` sets them (e.g. UploadsPerDay=1000)",
    )
    _add_testing_options(parser)
    return parser


def _parameter(text: str) -> tuple[str, str]:
    """KEY=VALUE, or sam's long form ParameterKey=KEY,ParameterValue=VALUE."""
    long_form = text.startswith("ParameterKey=") and ",ParameterValue=" in text
    if long_form:
        key, _, value = text.removeprefix("ParameterKey=").partition(",ParameterValue=")
    else:
        key, _, value = text.partition("=")
    if not key or "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


class _MergeParameters(argparse.Action):
    def __call__(
        self, parser: object, namespace: argparse.Namespace, values: object, option: object = None
    ) -> None:
        merged = dict(getattr(namespace, self.dest) or {})
        merged.update(values)  # type: ignore[arg-type]
        setattr(namespace, self.dest, merged)


def _add_testing_options(parser: argparse.ArgumentParser) -> None:
    """Options for tests and for finding out why something fails."""
    parser.add_argument(
        "--visibility-timeout",
        dest="visibility_timeout_s",
        type=int,
        help="override the visibility timeout of the queues the functions consume, in seconds (tests)",
    )
    parser.add_argument(
        "--fault",
        dest="faults",
        action="append",
        default=[],
        metavar="SERVICE.OPERATION:KIND[:COUNT]",
        help="arm a fault for the handlers' AWS calls, e.g. s3.GetObject:crash:1",
    )
    parser.add_argument("--allow-faults", action="store_true", help="expose POST /__faults on the gateway")
    parser.add_argument(
        "--no-iam",
        dest="iam",
        action="store_false",
        help="do not enforce the functions' IAM roles (to tell whether a failure is an AccessDenied)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logs, including each HTTP request"
    )


def _serve(args: argparse.Namespace) -> int:
    from photoveil.local.specs import TemplateError
    from photoveil.local.stack import (
        LocalOptions,
        LocalStack,
        ModerationNeedsCredentialsError,
        PortInUseError,
    )

    options = LocalOptions(**{option.name: getattr(args, option.name) for option in fields(LocalOptions)})
    try:
        stack = LocalStack(options)
    except TemplateError as exc:
        print(f"photoveil local: {exc}", file=sys.stderr)
        return EXIT_BAD_TEMPLATE
    except ModerationNeedsCredentialsError as exc:
        print(f"photoveil local: {exc}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()
    # SIGTERM and SIGINT (Ctrl-C) both end in the same orderly stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stack.start()
    except PortInUseError as exc:
        stack.stop()
        print(f"photoveil local: {exc}", file=sys.stderr)
        return EXIT_PORT_IN_USE
    except BaseException:
        stack.stop()
        raise
    _log_started(stack, args)
    try:
        # Wake up regularly: a signal delivered to another thread does not interrupt an untimed wait in
        # the main thread, so its Python handler would only run at the next wake-up.
        while not stop.wait(0.5):
            pass
    finally:
        log.info("stopping: finishing photos in progress")
        stack.stop()
        log.info("stopped")
    return 0


def _log_started(stack: LocalStack, args: argparse.Namespace) -> None:
    spec, urls = stack.spec, stack.urls
    assert urls is not None
    queue = spec.upload_queue
    log.info(
        "resources from %s: queue %s (visibility %ss, maxReceiveCount %s -> %s), buckets %s, table %s",
        spec.source,
        queue.name,
        queue.visibility_timeout_s,
        queue.redrive_policy.get("maxReceiveCount"),
        spec.dead_letter_queue(queue).name,
        ", ".join(bucket.name for bucket in spec.buckets.values()),
        spec.jobs_table.name,
    )
    print(
        f"PhotoVeil is running at {urls.site}  (outbox: {urls.outbox}, moto: {urls.moto}; "
        f"{args.workers} worker(s), detector {args.detector}). Ctrl-C to stop.",
        flush=True,
    )
    print(MODERATION_NOTES[args.moderation], flush=True)


MODERATION_NOTES = {
    "off": "Moderation is OFF: uploads are not checked for explicit, violent, disturbing or hateful content "
    "(moto has no Rekognition; `--moderation rekognition` uses your own AWS credentials).",
    "rekognition": "Moderation is ON: every upload is sent to Amazon Rekognition DetectModerationLabels in "
    "your own AWS account (about $0.001 a photo).",
}


def _configure_logging(verbose: bool) -> None:
    # Our own handler: imported libraries may already have configured the root logger.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.INFO)
    log.propagate = False
    # The handlers' cold-start metric flush warns on every cold start; it is noise here.
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def main(argv: list[str]) -> int:
    """Entry point for `photoveil local ...`; returns the process exit code."""
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose)
    if args.command == "redrive":
        from photoveil.local.redrive import redrive_local

        return redrive_local(args.data_dir)
    return _serve(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
