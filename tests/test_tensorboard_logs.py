"""callbacks.TensorBoard and minicnn.tensorboard_logs: the event files, read back with TensorBoard's own
reader (EventAccumulator), hold Keras' tags at the epochs' steps with the History's values."""

import io
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboard", reason="TensorBoard logs need the tensorboard extra: "
                    "pip install -e '.[tensorboard]'")

from example_models import (  # noqa: E402
    digits,
    every_layer_data,
    every_layer_model,
    small_digits_model,
    tiny_data,
    tiny_model,
)
from PIL import Image  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    TENSORS,
    EventAccumulator,
)
from tensorboard.util import tensor_util  # noqa: E402

import minicnn  # noqa: E402
from minicnn import SGD, Dense, Input, Sequential, callbacks  # noqa: E402
from minicnn.schedules import ExponentialDecay  # noqa: E402
from minicnn.tensorboard_logs import GAP_COLOUR, filter_grid  # noqa: E402


def read_run(folder):
    """``{tag: [(step, value as an array), ...]}`` of every event file in the run folder, by TensorBoard."""
    accumulator = EventAccumulator(str(folder), size_guidance={TENSORS: 0})
    accumulator.Reload()
    return {tag: [(event.step, tensor_util.make_ndarray(event.tensor_proto))
                  for event in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


def scalars(run, tag):
    return [(step, float(value)) for step, value in run[tag]]


def fit_digits(tmp_path, epochs=3, **tensorboard):
    x, y, x_val, y_val = digits()
    model = small_digits_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    board = callbacks.TensorBoard(tmp_path / "logs", **tensorboard)
    history = model.fit(x[:256], y[:256], batch_size=64, epochs=epochs, verbose=0,
                        validation_data=(x_val[:64], y_val[:64]), callbacks=[board])
    return model, history


def test_epoch_scalars_are_the_history_in_train_and_validation_runs(tmp_path):
    model, history = fit_digits(tmp_path)
    train, validation = read_run(tmp_path / "logs" / "train"), read_run(tmp_path / "logs" / "validation")
    assert set(train) == {"epoch_loss", "epoch_accuracy", "epoch_learning_rate"}
    assert set(validation) == {"epoch_loss", "epoch_accuracy"}
    for name in ("loss", "accuracy"):
        np.testing.assert_allclose(scalars(train, f"epoch_{name}"),
                                   list(enumerate(history.history[name])), rtol=1e-6)
        np.testing.assert_allclose(scalars(validation, f"epoch_{name}"),
                                   list(enumerate(history.history[f"val_{name}"])), rtol=1e-6)
    np.testing.assert_allclose(scalars(train, "epoch_learning_rate"), [(0, 1e-3), (1, 1e-3), (2, 1e-3)])
    assert "learning_rate" not in history.history  # logged, not added to the History (as Keras)


def test_fits_one_epoch_at_a_time_append_to_one_file_per_run(tmp_path):
    """As the k-fold example's checkpointed training calls fit: epochs=e + 1, initial_epoch=e."""
    x, y = tiny_data(16)
    model = tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    board = callbacks.TensorBoard(tmp_path, histogram_freq=1, update_freq="batch")
    losses = [model.fit(x, y, epochs=epoch + 1, initial_epoch=epoch, verbose=0, validation_data=(x, y),
                        callbacks=[board]).history["loss"][0] for epoch in range(3)]
    for run in ("train", "validation"):
        assert len(list((tmp_path / run).iterdir())) == 1
    train = read_run(tmp_path / "train")
    np.testing.assert_allclose(scalars(train, "epoch_loss"), list(enumerate(losses)), rtol=1e-6)
    assert [step for step, _ in train["dense/kernel/histogram"]] == [0, 1, 2]
    assert [step for step, _ in train["batch_loss"]] == [1, 2, 3]  # one batch per epoch: the steps go on
    assert [step for step, _ in read_run(tmp_path / "validation")["epoch_loss"]] == [0, 1, 2]


def test_the_learning_rate_follows_a_schedule_and_callbacks_that_set_it(tmp_path):
    x, y = tiny_data(16)
    model = tiny_model()
    schedule = ExponentialDecay(0.1, decay_steps=2, decay_rate=0.5)
    model.compile(optimizer=SGD(learning_rate=schedule), loss="sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=8, epochs=2, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path)])
    rates = scalars(read_run(tmp_path / "train"), "epoch_learning_rate")
    np.testing.assert_allclose(rates, [(0, 0.1 * 0.5), (1, 0.1 * 0.25)], rtol=1e-6)  # 2, then 4 steps

    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    halve = callbacks.LearningRateScheduler(lambda epoch: 0.5 ** epoch)
    history = model.fit(x, y, epochs=3, verbose=0, callbacks=[halve, callbacks.TensorBoard(tmp_path / "2")])
    np.testing.assert_allclose(scalars(read_run(tmp_path / "2" / "train"), "epoch_learning_rate"),
                               list(enumerate(history.history["learning_rate"])))


def test_histograms_of_weights_and_gradients_every_histogram_freq_epochs(tmp_path):
    model, _ = fit_digits(tmp_path, epochs=3, histogram_freq=2)
    train = read_run(tmp_path / "logs" / "train")
    weights = {f"{layer.name}/{key}/histogram": values for layer in model.layers
               for key, values in [*layer.params.items(), *layer.state.items()]}
    gradients = {f"{name}/gradient/histogram": grad for name, _, grad in model.parameters_and_gradients()}
    assert set(weights) == {"conv2d/kernel/histogram", "conv2d/bias/histogram", "dense/kernel/histogram",
                            "dense/bias/histogram", "dense_1/kernel/histogram", "dense_1/bias/histogram"}
    assert set(train) == {"epoch_loss", "epoch_accuracy", "epoch_learning_rate", *weights, *gradients}
    for tag, values in {**weights, **gradients}.items():
        assert [step for step, _ in train[tag]] == [0, 2]
        buckets = train[tag][-1][1]  # (30, 3): left edge, right edge, count; the last epoch: final values
        assert buckets.shape == (30, 3) and buckets[:, 2].sum() == values.size
        assert buckets[0, 0] == pytest.approx(values.min()) and buckets[-1, 1] == pytest.approx(values.max())
    assert not np.allclose(train["dense_1/kernel/gradient/histogram"][-1][1],
                           train["dense_1/kernel/histogram"][-1][1])


def test_state_such_as_moving_statistics_gets_histograms_too(tmp_path):
    x, y = every_layer_data()
    model = every_layer_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.TensorBoard(tmp_path, histogram_freq=1)])
    train = read_run(tmp_path / "train")
    assert {"batch_normalization/moving_mean/histogram", "batch_normalization/moving_variance/histogram",
            "batch_normalization/gamma/gradient/histogram"} <= set(train)
    assert "batch_normalization/moving_mean/gradient/histogram" not in train


def test_write_images_draws_the_first_conv_filters(tmp_path):
    model, _ = fit_digits(tmp_path, epochs=2, histogram_freq=1, write_images=True)
    accumulator = EventAccumulator(str(tmp_path / "logs" / "train"), size_guidance={TENSORS: 0})
    accumulator.Reload()
    events = accumulator.Tensors("conv2d/kernel/image")
    assert [event.step for event in events] == [0, 1]
    width, height, png = tensor_util.make_ndarray(events[-1].tensor_proto)
    image = np.asarray(Image.open(io.BytesIO(png)))
    expected = filter_grid(model.get_layer("conv2d").params["kernel"])
    assert (int(width), int(height)) == (image.shape[1], image.shape[0])
    np.testing.assert_array_equal(image, expected)


def test_filter_grid_puts_each_filter_in_its_cell_with_its_channels_side_by_side():
    kernel = np.zeros((2, 3, 2, 5))  # 5 filters of 2x3 on 2 channels: a 3-column grid of cells 2 x 6
    kernel[1, 2, 1, 4] = 1.0  # filter 4 (row 1, column 1 of the grid), channel 1, its bottom-right weight
    grid = filter_grid(kernel, zoom=1, gap=1)
    assert grid.shape == (2 * 2 + 1, 3 * 6 + 2, 3) and grid.dtype == np.uint8
    assert np.argwhere((grid == 255).all(axis=-1)).tolist() == [[3 + 1, 7 + 3 + 2]]
    grey = (grid[..., 0] == grid[..., 1]) & (grid[..., 1] == grid[..., 2])
    assert grey.sum() == 5 * 2 * 6  # the cells; the gaps and the empty sixth cell are GAP_COLOUR
    assert (grid[~grey] == GAP_COLOUR).all()
    assert (filter_grid(np.full((1, 1, 1, 1), 3.0), zoom=2) == 128).all()


def test_update_freq_writes_the_running_batch_logs(tmp_path):
    x, y = tiny_data(16)
    model = tiny_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    seen = []

    class Record(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(logs["loss"])

    model.fit(x, y, batch_size=4, epochs=2, verbose=0,
              callbacks=[Record(), callbacks.TensorBoard(tmp_path, update_freq=3)])
    train = read_run(tmp_path / "train")
    np.testing.assert_allclose(scalars(train, "batch_loss"), [(3, seen[2]), (6, seen[5])], rtol=1e-6)
    assert [step for step, _ in train["batch_accuracy"]] == [3, 6]


def test_steps_per_second(tmp_path):
    fit_digits(tmp_path, epochs=1, write_steps_per_second=True)
    (step, rate), = scalars(read_run(tmp_path / "logs" / "train"), "epoch_steps_per_second")
    assert step == 0 and rate > 0


@pytest.mark.parametrize(("argument", "message"), [
    ({"write_graph": True}, "write_graph=True is not supported .a minicnn model is Python code"),
    ({"profile_batch": 2}, "profile_batch=2 is not supported .minicnn has no profiler"),
    ({"embeddings_freq": 1}, "embeddings_freq=1 is not supported .minicnn has no Embedding"),
    ({"embeddings_metadata": {"e": "m.tsv"}}, "embeddings_metadata=.* is not supported"),
    ({"write_images": True}, "write_images=True draws the filters at the epochs of histogram_freq"),
    ({"update_freq": "step"}, "update_freq"),
    ({"histogram_freq": -1}, "histogram_freq"),
])
def test_keras_options_minicnn_lacks_are_errors(argument, message, tmp_path):
    with pytest.raises((ValueError, TypeError), match=f"TensorBoard: {message}"):
        callbacks.TensorBoard(tmp_path, **argument)


def test_write_images_without_a_conv_layer_is_an_error(tmp_path):
    model = Sequential([Input((3,)), Dense(2, activation="softmax")])
    model.compile(loss="sparse_categorical_crossentropy")
    board = callbacks.TensorBoard(tmp_path, histogram_freq=1, write_images=True)
    with pytest.raises(ValueError, match="first Conv2D layer's filters; the model has no Conv2D"):
        model.fit(np.zeros((4, 3), np.float32), [0, 1, 0, 1], verbose=0, callbacks=[board])


def test_without_the_extra_the_error_names_it(monkeypatch, tmp_path):
    for name in [name for name in sys.modules if name.split(".")[0] == "tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    monkeypatch.delitem(sys.modules, "minicnn.tensorboard_logs")
    monkeypatch.delattr(minicnn, "tensorboard_logs")
    with pytest.raises(ModuleNotFoundError, match=r"TensorBoard needs the tensorboard package: "
                                                  r"pip install 'minicnn\[tensorboard\]'"):
        callbacks.TensorBoard(tmp_path)
