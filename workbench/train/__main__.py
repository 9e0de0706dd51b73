"""``python -m workbench.train --subject ID [--recipe FILE] [--resume] [KEY=VALUE...]``.

The entry point ``accelerate launch`` starts on every process, e.g.
``accelerate launch --multi_gpu --num_processes 2 -m workbench.train --subject alice model=sdxl`` (on a machine
without GPUs the same command runs 2 CPU processes over gloo; accelerate's ``--cpu`` alone starts only one).
It is ``workbench train`` under another name, so both take the same arguments.
"""

from __future__ import annotations

import sys

from workbench.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
