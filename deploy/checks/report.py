"""How every check here ends: one line per problem on stdout, exit status 1 when there is any."""

from __future__ import annotations

import sys


def report(problems: list[str]) -> None:
    for p in problems:
        print(p)
    sys.exit(1 if problems else 0)
