"""Epoch checkpoints: a training interrupted after epoch e goes on from epoch e, as if never stopped.

:func:`fit_with_checkpoints` trains a minicnn model one epoch at a time,
``fit(..., epochs=epochs, initial_epoch=e, seed=seed)`` stopped after that epoch (so that it is
labelled ``Epoch e+1/epochs``, out of the real total, also when resumed), and after each epoch
saves the model (weights, optimizer state, every layer's random generator;
see :meth:`minicnn.Sequential.save`) as ``epoch_<e>.npz`` and the history so far
as ``epoch_<e>.json`` in its folder. The JSON file is written after the model, so
a checkpoint counts only once both are complete; older ones are then deleted.
Started again on the same folder, it loads the last checkpoint and trains the
remaining epochs. Since ``fit`` shuffles epoch e by ``(seed, e)`` alone, the
result is bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from minicnn.callbacks import Callback
from minicnn.experiments.rundir import RunDirError, read_part, refuse_link, write_part

_EPOCH_FILE = re.compile(r"epoch_(\d+)\.json")


def fit_with_checkpoints(model, x, y, *, directory: str | os.PathLike, record: Mapping[str, Any],
                         epochs: int, fit_kwargs: Mapping[str, Any], **fit_args) -> tuple[Any, dict, float]:
    """Train ``model`` for ``epochs`` epochs, checkpointing after each; resume from ``directory``.

    ``fit_kwargs`` must hold the ``seed`` of the shuffling; ``fit_args`` (batch_size,
    verbose, validation_data) go to every ``fit``. ``record`` (see
    :func:`minicnn.experiments.rundir.run_record`) is stored with each checkpoint, and a
    checkpoint of another run is an error. Returns ``(model, history, fit_seconds)``:
    the trained model (a loaded one when resumed), the history of all epochs and the
    seconds spent in ``fit`` over all sessions.
    """
    if fit_kwargs.get("seed") is None:
        raise ValueError("checkpoints need fit_kwargs['seed']: without a fixed seed, "
                         "a resumed fit would shuffle differently")
    from minicnn import load_model
    from minicnn.saving import ModelFileError

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    done, history, seconds = 0, {}, 0.0
    last = latest_epoch(directory)
    if last:
        state = read_part(directory / f"epoch_{last}.json", record)
        saved = directory / f"epoch_{last}.npz"
        refuse_link(saved)
        try:
            model = load_model(saved)
        except ModelFileError as exc:
            raise RunDirError(f"a damaged checkpoint: {exc}; delete {directory} to train this model again "
                              "from its first epoch") from None
        done, history, seconds = last, state["history"], state["fit_seconds"]
    for epoch in range(done, epochs):
        start = time.perf_counter()
        step = model.fit(x, y, epochs=epochs, initial_epoch=epoch, **fit_args, **{
            **fit_kwargs, "callbacks": [*(fit_kwargs.get("callbacks") or ()), StopAfterEpoch()]})
        seconds += time.perf_counter() - start
        for key, values in step.history.items():
            history.setdefault(key, []).extend(float(v) for v in values)
        refuse_link(directory / f"epoch_{epoch + 1}.npz")
        model.save(directory / f"epoch_{epoch + 1}.npz")
        state = {"history": history, "fit_seconds": seconds}
        write_part(directory / f"epoch_{epoch + 1}.json", state, record)
        _remove_before(directory, epoch + 1)
    return model, history, seconds


class StopAfterEpoch(Callback):
    """Ends ``fit`` after its first epoch."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.model.stop_training = True


def latest_epoch(directory: str | os.PathLike) -> int:
    """The last epoch with a complete checkpoint in ``directory``, or 0."""
    directory = Path(directory)
    epochs = [int(m[1]) for p in directory.glob("epoch_*.json") if (m := _EPOCH_FILE.fullmatch(p.name))]
    return max((e for e in epochs if (directory / f"epoch_{e}.npz").exists()), default=0)


def remove_checkpoints(directory: str | os.PathLike) -> None:
    """Delete a finished training's checkpoint folder, and its parent if that is left empty."""
    directory = Path(directory)
    shutil.rmtree(directory, ignore_errors=True)
    try:
        directory.parent.rmdir()
    except OSError:
        pass  # other trainings' checkpoints are still there


def _remove_before(directory: Path, epoch: int) -> None:
    for path in directory.glob("epoch_*"):
        number = path.name.removeprefix("epoch_").split(".")[0]
        if number.isdigit() and int(number) < epoch:
            path.unlink(missing_ok=True)
