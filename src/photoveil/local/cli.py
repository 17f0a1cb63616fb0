"""`photoveil local ...`: run the whole product on this machine, or redrive its DLQ."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path

EXIT_PORT_IN_USE = 3
EXIT_NOT_RUNNING = 4


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
    parser.add_argument("--workers", type=int, default=d.workers, help="blur workers (default %(default)s)")
    parser.add_argument("--host", default=d.host, choices=["127.0.0.1"], help="bind address (127.0.0.1 only)")
    parser.add_argument(
        "--detector",
        default=d.detector,
        choices=["centerface", "rekognition", "both"],
        help="face detector (default %(default)s: in-process, no AWS needed)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=d.data_dir,
        help="local state: outbox/ and stack.json (default %(default)s)",
    )
    parser.add_argument("--template", type=Path, default=d.template, help="SAM template to mirror")
    parser.add_argument("--site-dir", type=Path, default=d.site_dir, help="the website to serve")
    parser.add_argument(
        "--sender-email", default=d.sender_email, help="verified SES sender (default %(default)s)"
    )
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=None,
        help="override BlurQueue's visibility timeout in seconds (tests use a short one)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SERVICE.OPERATION:KIND[:COUNT]",
        help="arm a fault for the handlers' AWS calls, e.g. s3.GetObject:crash:1",
    )
    parser.add_argument("--allow-faults", action="store_true", help="expose POST /__faults on the gateway")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logs, including each HTTP request"
    )
    return parser


def _serve(args: argparse.Namespace) -> int:
    from photoveil.local.stack import LocalOptions, LocalStack, PortInUseError

    stack = LocalStack(
        LocalOptions(
            port=args.port,
            moto_port=args.moto_port,
            workers=args.workers,
            host=args.host,
            detector=args.detector,
            data_dir=args.data_dir,
            template=args.template,
            site_dir=args.site_dir,
            sender_email=args.sender_email,
            visibility_timeout_s=args.visibility_timeout,
            faults=args.fault,
            allow_faults=args.allow_faults,
        )
    )
    log = logging.getLogger("photoveil.local")
    for note in stack.spec.notes:
        log.warning("template: %s", note)
    stop = threading.Event()
    # SIGTERM and SIGINT (Ctrl-C) both end in the same orderly stop.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        urls = stack.start()
    except PortInUseError as exc:
        print(f"photoveil local: {exc}", file=sys.stderr)
        return EXIT_PORT_IN_USE
    except BaseException:
        stack.stop()
        raise
    spec = stack.spec
    log.info(
        "resources from %s: queue %s (visibility %ss, maxReceiveCount %s -> %s), batch size %s, "
        "buckets %s + %s, table %s",
        spec.source,
        spec.queue.name,
        spec.queue.visibility_timeout_s,
        spec.queue.max_receive_count,
        spec.dlq.name,
        spec.batch_size,
        spec.uploads_bucket,
        spec.blurred_bucket,
        spec.table,
    )
    print(
        f"PhotoVeil is running at {urls.site}  (outbox: {urls.outbox}, moto: {urls.moto}; "
        f"{args.workers} worker(s), detector {args.detector}). Ctrl-C to stop.",
        flush=True,
    )
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


def _configure_logging(verbose: bool) -> None:
    # Our own handler: imported libraries may already have configured the root logger.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", datefmt="%H:%M:%S"))
    log = logging.getLogger("photoveil.local")
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
