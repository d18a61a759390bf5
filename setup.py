"""The compiled core glmm._core (see glmm/compiled.py); every other setting is in
pyproject.toml.

Optional: without a C compiler the install still succeeds, and numpy computes the same
(slower on small models).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("glmm._core", ["glmm/_core.c"], optional=True)])
