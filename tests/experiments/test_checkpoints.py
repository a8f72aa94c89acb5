"""minicnn.experiments.checkpoints: epochs labelled out of the real total, also when a run resumes."""

from __future__ import annotations

from example_models import tiny_data, tiny_model

from minicnn.experiments.checkpoints import fit_with_checkpoints

RECORD = {"run": "labels"}


def fit(directory, epochs):
    x, y = tiny_data(8)
    model = tiny_model()
    model.compile(loss="sparse_categorical_crossentropy", implementation="reference")
    return fit_with_checkpoints(model, x, y, directory=directory, record=RECORD, epochs=epochs,
                                fit_kwargs={"seed": 3}, batch_size=4, verbose=2)


def labels(out: str) -> list[str]:
    return [line.split(" - ")[0] for line in out.splitlines()]


def test_each_epoch_is_labelled_out_of_the_total_also_when_resumed(tmp_path, capsys):
    _, history, _ = fit(tmp_path / "whole", epochs=3)
    assert labels(capsys.readouterr().out) == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    assert len(history["loss"]) == 3  # one epoch per fit: each stopped after its epoch
    fit(tmp_path / "cut", epochs=1)  # a run cut after its first epoch ...
    capsys.readouterr()
    _, resumed, _ = fit(tmp_path / "cut", epochs=3)  # ... resumed: epochs 2 and 3 of 3
    assert labels(capsys.readouterr().out) == ["Epoch 2/3", "Epoch 3/3"]
    assert resumed == history
