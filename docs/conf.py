"""Sphinx configuration of minicnn's documentation site (``docs/`` is the source folder).

Build it strictly, as CI does, from the repository's root::

    sphinx-build -W --keep-going -n -b html docs docs/_build/html

Every warning is an error there: a broken link or anchor, a missing cross-reference, a notebook cell
that raises. How the site is built and why with these tools: ``docs/architecture.md``, "How the
documentation site is built".
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))  # the minicnn of this checkout, for autodoc and the notebooks

project = "minicnn"
author = "the minicnn authors"
copyright = "minicnn authors, MIT License"

extensions = [
    "myst_nb",  # Markdown pages (MyST) and notebooks, executed at build time
    "sphinx.ext.autodoc",  # the API reference, from the docstrings
    "sphinx.ext.autosummary",  # one page per module, found recursively (docs/_api, not committed)
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 copied into the site: no CDN
]

html_theme = "furo"
html_title = "minicnn"
html_favicon = "images/favicon.svg"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
autosummary_generate = True
# The modules of the tensorboard and onnx extras import them at their top: the reference documents them
# without those extras installed.
autodoc_mock_imports = ["onnx", "onnxruntime", "tensorboard", "PIL"]
# The exercises' stubs are files a student fills in (``python -m minicnn.exercises start``), not API:
# autosummary leaves out a module it mocks. It imports the extras' modules too, so mocks their imports.
autosummary_mock_imports = ["minicnn.exercises.stubs", *autodoc_mock_imports]

# Markdown: $...$ and $$...$$ are mathematics; headings get GitHub's anchors, so that links such as
# backprop.md#the-layer-contract work on GitHub and on the site alike.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 6
myst_dmath_double_inline = True

# Notebooks: run every cell at each build; an exception fails the build.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 600
nb_execution_in_temp = True  # files a notebook writes stay out of docs/

# The API reference: members in source order; type hints in the description, not the signature.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
# Each object once, in the module that defines it (``ignore-module-all``: not again where re-exported).

# -n (nitpicky) fails on every unresolved reference. Names from other projects (NumPy, the standard
# library, ...) cannot resolve without their inventories, which would need the network.
nitpick_ignore_regex = [
    ("py:.*", r"minicnn(\..*)?\._\w+"),  # private names (a private base class in "Bases: ...")
    ("py:class", r"minicnn(\..*)?\.[A-Z]"),  # type variables (T, F, R)
    ("py:.*", r"(argparse|contextlib|contextvars|numbers|types|np|numpy|numpy\.typing|npt|collections\.abc"
              r"|typing|pathlib|os|io|enum|dataclasses|concurrent\.futures|joblib|dask|distributed|sklearn"
              r"|tqdm|matplotlib|numba|keras|tensorflow|onnx|onnxruntime|tensorboard|PIL)(\..*)?"),
    ("py:class", r"(Path|Callable|Iterable|Iterator|Sequence|Mapping|Generator|Any|Literal|TypeVar|Self"
                 r"|ArrayLike|NDArray|Figure|Axes|int|float|str|bool|dict|list|tuple|None|type|object)"),
]


# References in minicnn's docstrings that resolve to no entry of the API reference yet: names re-exported
# from a package (``load_mnist`` in ``minicnn.datasets``), instance attributes, module constants and
# removed functions. Known, listed here so that any new unresolved reference fails the build; each one
# fixed in its docstring comes off this list.
nitpick_ignore = [
    ("py:attr", "history"), ("py:attr", "learning_rate"), ("py:attr", "pads"),
    ("py:attr", "validation_data"), ("py:class", "Sequential"),
    ("py:class", "minicnn.datasets.DatasetError"), ("py:class", "minicnn.models.Sequential"),
    ("py:data", "CIFAR10_CLASSES"), ("py:data", "DEFAULTS"), ("py:data", "EXERCISES"),
    ("py:data", "FASHION_MNIST_CLASSES"), ("py:data", "VALIDATION_SPLIT"),
    ("py:data", "minicnn.datasets.mnist.FASHION_MNIST_CLASSES"), ("py:func", "check_gradient"),
    ("py:func", "check_layer"), ("py:func", "check_model"), ("py:func", "check_optimizer"),
    ("py:func", "factor_hint"), ("py:func", "load_cifar10"), ("py:func", "load_cifar10_binary"),
    ("py:func", "load_digits"), ("py:func", "load_fashion_mnist"), ("py:func", "load_idx_dataset"),
    ("py:func", "load_mnist"), ("py:func", "minicnn.load_model"), ("py:func", "minicnn.model_from_json"),
    ("py:func", "minicnn.set_random_seed"), ("py:func", "minicnn.utils.to_categorical"),
    ("py:func", "prepare_images"), ("py:func", "set_random_seed"), ("py:func", "to_categorical"),
    ("py:meth", "assert_ok"), ("py:meth", "compile"), ("py:meth", "epoch"), ("py:meth", "get"),
    ("py:meth", "minicnn.Sequential.save"), ("py:meth", "on_train_batch_begin"),
    ("py:meth", "on_train_batch_end"), ("py:obj", "minicnn.datasets.base.checked_max_bytes"),
    ("py:obj", "minicnn.exercises.names"), ("py:obj", "minicnn.experiments.cli.print_header"),
    ("py:obj", "minicnn.experiments.cli.print_summary"),
    ("py:obj", "minicnn.gradcheck.steps.restore_generators"), ("py:obj", "minicnn.registry.T"),
    ("py:obj", "minicnn.schedules.deserialize"), ("py:obj", "minicnn.schedules.serialize"),
]


LINK = re.compile(r"\[(?P<text>[^\]\n]*)\]\((?P<target>[^)#\s:]+)(?P<fragment>#[^)\s]*)?\)")


def link_outside_the_site(source: Path, page: Path, text: str) -> str:
    """The Markdown ``text`` of ``source``, shown as ``page`` of the site, with its links written for the
    site. The Markdown files link as on GitHub, by relative path. A link to a page of docs/ leads to that
    page; one to a file elsewhere in the repository (``../benchmarks/results/speed.md``) becomes a
    download of that file, and one to a folder its text alone; the notebooks' folder and the changelog
    link to their pages."""

    def rewrite(match: re.Match) -> str:
        target = (source.parent / match["target"]).resolve()
        if target == DOCS / "notebooks":
            target = DOCS / "notebooks" / "index.md"
        elif target == ROOT / "CHANGELOG.md":
            target = DOCS / "changelog.md"
        if not target.exists():
            return match[0]  # a broken link: Sphinx reports it
        if target.is_dir():
            return match["text"]
        relative = os.path.relpath(target, page.parent)
        scheme = "" if target.is_relative_to(DOCS) else "path:"
        return f"[{match['text']}]({scheme}{relative}{match['fragment'] or ''})"

    return LINK.sub(rewrite, text)


def on_source_read(app, docname: str, source: list[str]) -> None:
    path = DOCS / (docname + ".md")
    if path.exists():
        source[0] = link_outside_the_site(path, path, source[0])


def on_include_read(app, relative_path: Path, parent_docname: str, content: list[str]) -> None:
    """An included file (the README as the home page, the changelog) links relative to its own folder."""
    page = DOCS / (parent_docname + ".md")
    content[0] = link_outside_the_site((page.parent / relative_path).resolve(), page, content[0])


def setup(app):
    app.connect("source-read", on_source_read)
    app.connect("include-read", on_include_read)
