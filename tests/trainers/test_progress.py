"""minicnn.trainers.progress: what fit shows on a terminal and in a log file; a bar that tells the truth."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from example_models import tiny_data, tiny_model

from minicnn.trainers import progress
from minicnn.trainers.progress import EpochBar, compiling_notice, resolve_verbose

ROOT = Path(__file__).resolve().parents[2]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_a_bar_on_a_terminal_and_one_line_per_epoch_elsewhere(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", Terminal())
    assert resolve_verbose("auto", "fit") == 1
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert resolve_verbose("auto", "fit") == 2
    assert [resolve_verbose(v, "fit") for v in (0, 1, 2)] == [0, 1, 2]  # Keras' meanings kept


@pytest.mark.parametrize("verbose", [3, -1, "yes", True, None])
def test_a_bad_verbose_is_rejected_by_name(verbose):
    x, y = tiny_data()
    model = tiny_model()
    model.compile(loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match=r"fit: verbose must be 0, 1, 2 or 'auto'; got "):
        model.fit(x, y, verbose=verbose)


FIT_TO_A_FILE = """
from tests.example_models import tiny_data, tiny_model
x, y = tiny_data(24)
model = tiny_model()
model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"], implementation="reference")
model.fit(x, y, batch_size=4, epochs=2, seed=0)  # verbose="auto", the default
model.fit(x, y, batch_size=4, epochs=4, initial_epoch=2, seed=0)  # resumed: epochs 3 and 4 of 4
"""


def test_fit_into_a_file_writes_one_line_per_epoch_labelled_out_of_the_total(tmp_path):
    log = tmp_path / "log.txt"
    with log.open("w") as out:
        subprocess.run([sys.executable, "-c", FIT_TO_A_FILE], stdout=out, cwd=ROOT, check=True)
    text = log.read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2", "Epoch 3/4", "Epoch 4/4"]
    assert all(re.fullmatch(r"Epoch \d/\d - \d+\.\ds - loss: \d\.\d{4} - accuracy: \d\.\d{4}", line)
               for line in lines), lines


class Clock:
    """A stand-in for ``time.time`` that moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_time_left_is_estimated_from_steady_batches_not_the_compiling_one(monkeypatch, capsys):
    clock = Clock()
    monkeypatch.setattr("tqdm.std.time", clock)
    x, y = tiny_data(40)
    model = tiny_model()
    model.compile(loss="sparse_categorical_crossentropy", implementation="reference")
    train_step = model._train_step

    def timed_step(*args):
        clock.now += 600.0 if clock.now == 1000.0 else 2.0  # a first batch that compiles for 10 minutes
        return train_step(*args)

    monkeypatch.setattr(model, "_train_step", timed_step)
    model.fit(x, y, batch_size=4, epochs=1, verbose=1)
    shown = {int(m[1]): m[2] for m in re.finditer(r" (\d+)/10 \[[\d:]+<([\d:?]+)", capsys.readouterr().out)}
    # after batch k, 10 - k batches of 2 s are left: 00:16 after batch 2, 00:02 after batch 9
    assert {k: shown[k] for k in (2, 5, 9)} == {2: "00:16", 5: "00:10", 9: "00:02"}


def test_the_first_batch_counts_as_done():
    bar = EpochBar("Epoch 1/1", 5, shown=True)
    with bar:
        bar.batch_done({"loss": 1.0})
        bar.batch_done({"loss": 1.0})
        assert bar.bar.n == 2 and "loss" in str(bar.bar.postfix)


def test_a_compiling_kernel_is_announced_once_before_it_compiles(capsys, monkeypatch):
    import numpy as np
    from numba import njit

    def kernel(x):  # pragma: no cover - compiled
        for i in range(x.shape[0]):
            x[i] += 1.0

    kernel.__module__ = "minicnn.kernels.made_in_a_test"  # as if one of minicnn's kernels
    monkeypatch.setattr(progress, "SECONDS_TO_COMPILE", 2.0)  # said only beyond a second
    compiled = njit(kernel)
    x = np.zeros(4)
    bar = EpochBar("Epoch 1/1", 3, shown=False)
    with compiling_notice(False, bar):  # verbose=0: nothing said
        compiled(x)
    assert capsys.readouterr().out == ""
    compiled = njit(kernel)
    with compiling_notice(True, bar):
        compiled(x)
        compiled(x.astype(np.float32))  # a second signature compiles too, and is not announced again
    out = capsys.readouterr().out
    assert re.fullmatch(r"Compiling minicnn's kernels for this model \(first run only: about \d+ s on 2 idle "
                        r"cores, longer on a busy or slower machine\) \.\.\.\n", out), out
    with compiling_notice(True, bar):  # compiled already, or loaded from Numba's cache: nothing said
        compiled(x)
    assert capsys.readouterr().out == ""
