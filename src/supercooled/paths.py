"""Where the project's data live: one definition of every default path.

The repository root is the checkout that holds this package (an editable install:
``src/supercooled`` -> the root), else the first folder above the working directory that
holds ``_toc.yml`` or ``pyproject.toml`` (a notebook runs in ``notebooks/``), else the working
directory. Under it ``data/`` holds the library, the T_mct table, the shipped model and the
result tables.

The state-point library can live elsewhere: the environment variable ``SUPERCOOLED_LIBRARY``
names its folder, and everything derived from the library (the T_mct table and its cache)
then lives beside it, in ``<library>/../mct``, so what is written for a library is what is
read for it.
"""

from __future__ import annotations

import os
from pathlib import Path

LIBRARY_VARIABLE = "SUPERCOOLED_LIBRARY"


def repository_root() -> Path:
    """The checkout holding the project's ``data/`` (see the module docstring)."""
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / "pyproject.toml").is_file() and (package_root / "src").is_dir():
        return package_root
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_toc.yml").is_file() or (folder / "pyproject.toml").is_file():
            return folder
    return here


def data_path(*parts) -> Path:
    """A path under the repository's ``data/``."""
    return repository_root().joinpath("data", *parts)


def library_path() -> Path:
    """The state-point library: ``$SUPERCOOLED_LIBRARY`` if set, else ``data/library``.
    The folder need not exist yet."""
    if os.environ.get(LIBRARY_VARIABLE):
        return Path(os.environ[LIBRARY_VARIABLE]).expanduser()
    return data_path("library")


def mct_path(*parts) -> Path:
    """A path in the folder of the library's MCT results (``data/mct`` by default)."""
    return library_path().parent.joinpath("mct", *parts)


def results_path(*parts) -> Path:
    """A path under ``data/results`` (the result tables the chapters write)."""
    return data_path("results", *parts)


def model_path() -> Path:
    """The shipped MLP ensemble, ``data/models/mlp``."""
    return data_path("models", "mlp")


def memory_predictor_path() -> Path:
    """The shipped memory predictor (``predict --method memory``)."""
    return data_path("models", "memory", "predictor.json")


def independent_path() -> Path:
    """The independent test set (states no model is trained on), ``data/independent``."""
    return data_path("independent")
