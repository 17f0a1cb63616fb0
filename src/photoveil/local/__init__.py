"""The embedded local stack: the whole product on 127.0.0.1 with no AWS account and no Docker.

`photoveil local` (and `make run`) calls :func:`main`, which runs :class:`photoveil.local.stack.LocalStack`;
tests and benches start that command with photoveil_dev.launcher. Imports are lazy so `photoveil --help`
stays fast.
"""

from __future__ import annotations


def main(argv: list[str]) -> int:
    """`photoveil local [options]` / `photoveil local redrive`: see `photoveil local --help`."""
    from photoveil.local.cli import main as cli_main

    return cli_main(argv)
