"""``python -m workbench.train SUBJECT [KEY=VALUE...] [--model M] [--recipe FILE] [--resume]``.

The entry point ``accelerate launch`` starts on every process, e.g.
``accelerate launch --multi_gpu --num_processes 2 -m workbench.train alice --model sdxl`` (on a machine
without GPUs the same command runs 2 CPU processes over gloo; accelerate's ``--cpu`` alone starts only one).
"""

from __future__ import annotations

import argparse
import sys

from workbench.cli import add_function_arguments
from workbench.errors import MissingDependencyError, WorkbenchError


def main(argv: list[str] | None = None) -> int:
    from workbench.cli.train import train

    parser = argparse.ArgumentParser(
        prog="python -m workbench.train", description=train.__doc__.split("\n")[0]
    )
    add_function_arguments(parser, train)
    try:
        # intermixed: KEY=VALUE overrides may come before or after the flags.
        return int(train(**vars(parser.parse_intermixed_args(argv))) or 0)
    except (WorkbenchError, MissingDependencyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
