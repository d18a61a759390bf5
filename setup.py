"""The compiled core of glmm.scalar_term; every other setting is in pyproject.toml.

Optional: without a C compiler the install still succeeds, and glmm.scalar_term computes the
same in numpy (slower on small models).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("glmm._scalar_term", ["glmm/_scalar_term.c"], optional=True)])
