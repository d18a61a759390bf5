"""The compiled core glmm._core (see glmm/compiled.py), from the C sources in glmm/csrc/;
every other setting is in pyproject.toml.

Optional: without a C compiler the install still succeeds, and numpy computes the same
(slower on small models).
"""

from pathlib import Path

from setuptools import Extension, setup

CSRC = Path("glmm") / "csrc"

setup(ext_modules=[Extension(
    "glmm._core",
    sources=sorted(str(p) for p in CSRC.glob("*.c")),
    include_dirs=[str(CSRC)],
    depends=sorted(str(p) for p in CSRC.glob("*.h")),
    optional=True,
)])
