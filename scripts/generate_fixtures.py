#!/usr/bin/env python3
"""Regenerate the corpus fixtures from live R, or check them for drift: a thin wrapper of
``python -m parity generate`` (see ``--help``), kept for existing habits and CI.

    scripts/generate_fixtures.py                 # every corpus case, into parity/corpus/
    scripts/generate_fixtures.py cbpp verbagg    # only these cases
    scripts/generate_fixtures.py --check         # regenerate into a temp dir and compare
"""

from __future__ import annotations

import sys

from parity.cli import main


def wrap(argv: list[str]) -> list[str]:
    """``parity generate`` arguments: bare names become ``--case NAME``."""
    out, options_with_value = ["generate"], {"--out", "--cases", "--case", "-j", "--jobs",
                                             "--r-timeout"}
    it = iter(argv)
    for a in it:
        if a.startswith("-"):
            out.append(a)
            if a in options_with_value:
                out.append(next(it, ""))
        else:
            out += ["--case", a]
    return out


if __name__ == "__main__":
    sys.exit(main(wrap(sys.argv[1:])))
