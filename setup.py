"""The package list; everything else about the build is in pyproject.toml.

pyproject.toml maps the repo's ``experiments/`` and ``eval/`` folders into the wheel as the data-only packages
``workbench._builtin.experiments`` and ``workbench._builtin.eval`` (``package-dir``). Its ``find`` directive
cannot list mapped folders (pypa/setuptools#5145), so the list is built here: the ``workbench*`` packages the
directive used to find, plus those two.
"""

from setuptools import find_namespace_packages, setup

BUILTIN_DATA = ["workbench._builtin.experiments", "workbench._builtin.eval"]

setup(packages=find_namespace_packages(include=["workbench*"]) + BUILTIN_DATA)
