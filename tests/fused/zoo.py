"""The model zoo of issue 18, the CNNs people bring to minicnn: ``benchmarks/bench_zoo.py``'s ``ZOO``,
built as minicnn models for the tests, so that what is tested is what is timed.

``ZOO[name](seed)`` is an uncompiled :class:`minicnn.Sequential`, its initial weights drawn from ``seed``.
"""

import functools
import importlib.util
from pathlib import Path

import minicnn

_spec = importlib.util.spec_from_file_location(
    "bench_zoo", Path(__file__).resolve().parents[2] / "benchmarks" / "bench_zoo.py")
bench_zoo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_zoo)


def build(name: str, seed: int = 0) -> minicnn.Sequential:
    minicnn.set_random_seed(seed)
    return bench_zoo.keras_style_model(minicnn, bench_zoo.ZOO[name])


ZOO = {name: functools.partial(build, name) for name in bench_zoo.ZOO}
