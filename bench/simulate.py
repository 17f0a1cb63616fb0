"""`make simulate`: the capacity simulation (src/photoveil_dev/capacity); `validate` checks it against
`make load` on this machine (src/photoveil_dev/capacity/validate.py).

    .venv/bin/python bench/simulate.py [--scenario step] [--set WorkerMaxConcurrency=300] [--docs] ...
    .venv/bin/python bench/simulate.py validate [--photos 200] [--clients 32] [--workers 2]
"""

from __future__ import annotations

import sys

from photoveil_dev.capacity import cli


def main(argv: list[str]) -> int:
    if argv[:1] == ["validate"]:
        from photoveil_dev.capacity import validate

        return validate.main(argv[1:])
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
