"""Callbacks and the fit arguments that came with them: hooks, stop_training, the six Keras callbacks,
class_weight, sample_weight, steps_per_epoch and fitting on an iterator of batches."""

import csv
import math

import numpy as np
import pytest

from minicnn import SGD, Dense, Flatten, Input, Sequential, load_model
from minicnn.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)


def tiny_model(seed: int = 0, lr: float = 0.1) -> Sequential:
    model = Sequential([Input((4, 4, 1)), Flatten(), Dense(3, activation="softmax", seed=seed)])
    model.compile(SGD(learning_rate=lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def data(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 4, 4, 1)).astype(np.float32), rng.integers(0, 3, n)


class Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin",))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", dict(logs)))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, dict(logs)))

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(("batch_begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, dict(logs)))


# --------------------------------------------------------------------------- hooks


def test_hooks_are_called_in_keras_order_with_running_batch_logs():
    x, y = data(10)
    model, recorder = tiny_model(), Recorder()
    history = model.fit(x, y, batch_size=4, epochs=3, initial_epoch=1, verbose=0, callbacks=[recorder],
                        validation_data=(x[:3], y[:3]), seed=0)
    kinds = [c[0] if c[0] not in ("epoch_begin", "epoch_end", "batch_begin", "batch_end") else c[:2]
             for c in recorder.calls]
    batches = [("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1), ("batch_end", 1),
               ("batch_begin", 2), ("batch_end", 2)]
    assert kinds == ["train_begin", ("epoch_begin", 1), *batches, ("epoch_end", 1),
                     ("epoch_begin", 2), *batches, ("epoch_end", 2), "train_end"]
    assert recorder.model is model and recorder.params == {"epochs": 3, "steps": 3, "verbose": 0}
    batch_logs = [c[2] for c in recorder.calls if c[0] == "batch_end"][:3]
    epoch_logs = [c[2] for c in recorder.calls if c[0] == "epoch_end"]
    assert set(epoch_logs[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # the last batch's running means are the epoch's means (batches of 4, 4 and 2 samples)
    assert batch_logs[2]["loss"] == pytest.approx(epoch_logs[0]["loss"])
    assert history.epoch == [1, 2] and history.history["val_loss"] == [e["val_loss"] for e in epoch_logs]
    assert recorder.calls[-1][1] == epoch_logs[-1]


def test_stop_training_from_a_batch_ends_fit_after_that_batch_and_its_epoch():
    class StopAtBatch(Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    x, y = data(40)
    recorder = Recorder()
    history = tiny_model().fit(x, y, batch_size=4, epochs=5, verbose=0, callbacks=[StopAtBatch(), recorder])
    assert [c[1] for c in recorder.calls if c[0] == "batch_end"] == [0, 1]
    assert history.epoch == [0]  # that epoch still ends, with its logs


def test_keras_2_batch_hooks_are_called_too():
    class Counter(Callback):
        begun = ended = 0

        def on_batch_begin(self, batch, logs=None):
            self.begun += 1

        def on_batch_end(self, batch, logs=None):
            self.ended += 1

    x, y = data(12)
    counter = Counter()
    tiny_model().fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[counter])
    assert counter.begun == counter.ended == 6


def test_callbacks_must_be_callbacks():
    x, y = data(8)
    with pytest.raises(TypeError, match="fit: callbacks must be minicnn.callbacks.Callback instances; "
                                        "got function"):
        tiny_model().fit(x, y, callbacks=[lambda: None], verbose=0)


# --------------------------------------------------------------------------- EarlyStopping


class Stub:
    """What monitoring callbacks read from a model: metrics, weights, optimizer, stop_training."""

    def __init__(self, lr: float = 0.1):
        self.stop_training = False
        self.metrics = tiny_model().metrics
        self.weights = [np.zeros(1)]
        self.optimizer = SGD(lr)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = weights


def drive(callback, values, monitor="val_loss", model=None):
    """Feed ``values`` as the epochs' ``monitor`` logs; the epoch at which training stopped (or None).

    The stub's single weight is the epoch index, so a restored weight names its epoch."""
    model = model or Stub()
    callback.set_model(model)
    callback.on_train_begin({})
    for epoch, value in enumerate(values):
        model.weights = [np.array([float(epoch)])]
        callback.on_epoch_begin(epoch, {})
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            callback.on_train_end({})
            return epoch
    callback.on_train_end({})
    return None


@pytest.mark.parametrize("kwargs,values,stopped", [
    ({"patience": 0}, [1.0, 0.9, 0.95, 0.8], 2),           # first non-improvement stops
    ({"patience": 2}, [1.0, 0.9, 0.95, 0.92, 0.5], 3),     # two epochs without beating 0.9
    ({"patience": 2}, [1.0, 0.9, 0.95, 0.85, 0.86, 0.87], 5),
    ({"patience": 1, "min_delta": 0.1}, [1.0, 0.95, 0.85], 1),  # 0.95 is not better by more than 0.1
    ({"patience": 1, "mode": "max"}, [0.1, 0.2, 0.2, 0.3], 2),
    ({"patience": 2, "baseline": 0.5}, [1.0, 0.9, 0.95], 2),  # improving, but never beating the baseline
    ({"patience": 0, "start_from_epoch": 2}, [1.0, 2.0, 3.0, 4.0], 3),  # epochs 0, 1 not watched
])
def test_early_stopping_follows_keras_rule(kwargs, values, stopped):
    assert drive(EarlyStopping(**kwargs), values) == stopped


def test_early_stopping_restores_the_best_epochs_weights():
    model = Stub()
    drive(EarlyStopping(patience=2, restore_best_weights=True), [1.0, 0.5, 0.7, 0.6], model=model)
    assert model.weights[0][0] == 1.0  # epoch 1 had the best val_loss
    model = Stub()
    drive(EarlyStopping(patience=2), [1.0, 0.5, 0.7, 0.6], model=model)
    assert model.weights[0][0] == 3.0  # without restore_best_weights: the last epoch's


def test_early_stopping_auto_mode_reads_the_metric_direction():
    assert drive(EarlyStopping(monitor="val_accuracy", patience=0), [0.5, 0.6, 0.55], "val_accuracy") == 2
    with pytest.raises(ValueError, match="cannot tell whether monitor='val_f1' should go up or down"):
        drive(EarlyStopping(monitor="val_f1"), [0.5], "val_f1")
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        EarlyStopping(mode="up")


def test_early_stopping_warns_when_the_monitored_value_is_missing():
    with pytest.warns(UserWarning, match="`val_loss` which is not available. Available metrics are: loss"):
        assert drive(EarlyStopping(), [0.5, 0.6], monitor="loss") is None


def test_early_stopping_in_fit_restores_weights_and_state(tmp_path):
    """A real run: training loss keeps falling, so a patience-0 stop on a rising val_loss is what stops it."""
    x, y = data(60)
    xv, yv = x[:20], (y[:20] + 1) % 3  # labels the model cannot learn: val_loss rises as training fits
    model = tiny_model(lr=0.5)
    stopper = EarlyStopping(patience=1, restore_best_weights=True)
    history = model.fit(x, y, batch_size=10, epochs=30, verbose=0, validation_data=(xv, yv),
                        callbacks=[stopper], seed=0)
    losses = history.history["val_loss"]
    assert len(losses) < 30 and stopper.stopped_epoch == len(losses) - 1
    best = int(np.argmin(losses))
    assert stopper.best_epoch == best and losses[-1] >= losses[best] and losses[-2] >= losses[best]
    assert model.evaluate(xv, yv, return_dict=True)["loss"] == pytest.approx(losses[best], rel=1e-6)


# --------------------------------------------------------------------------- ModelCheckpoint


def test_model_checkpoint_formats_the_name_and_saves_only_improvements(tmp_path):
    model = tiny_model()
    checkpoint = ModelCheckpoint(tmp_path / "ckpt" / "m_{epoch:02d}_{val_loss:.2f}.npz", save_best_only=True)
    drive(checkpoint, [1.0, 0.5, 0.7, 0.25], model=model)
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["m_01_1.00.npz", "m_02_0.50.npz",
                                                                      "m_04_0.25.npz"]
    assert load_model(tmp_path / "ckpt" / "m_04_0.25.npz").count_params() == model.count_params()


def test_model_checkpoint_weights_only_and_every_epoch(tmp_path):
    model = tiny_model()
    drive(ModelCheckpoint(str(tmp_path / "w{epoch}.weights.npz"), save_weights_only=True), [1.0, 2.0],
          model=model)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w1.weights.npz", "w2.weights.npz"]
    other = tiny_model(seed=5)
    other.load_weights(tmp_path / "w2.weights.npz")
    for a, b in zip(model.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name,weights_only", [("m.keras", False), ("m.h5", False), ("m.weights.h5", True),
                                               ("m.npz", True), ("m.weights.npz", False)])
def test_model_checkpoint_rejects_other_file_names(name, weights_only):
    with pytest.raises(ValueError, match="ModelCheckpoint: with save_weights_only=.* must end in"):
        ModelCheckpoint(name, save_weights_only=weights_only)


def test_model_checkpoint_without_the_monitored_value_warns_and_saves_as_keras(tmp_path):
    with pytest.warns(UserWarning, match="`val_loss` which is not available"):
        drive(ModelCheckpoint(tmp_path / "m{epoch}.npz", save_best_only=True), [1.0, 2.0], monitor="loss",
              model=tiny_model())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.npz", "m2.npz"]


def test_model_checkpoint_names_a_missing_field():
    with pytest.raises(ValueError, match=r"cannot fill in filepath 'm_\{val_acc\}.npz'"):
        drive(ModelCheckpoint("m_{val_acc}.npz"), [1.0], model=tiny_model())


# --------------------------------------------------------------------------- CSVLogger


def test_csv_logger_writes_one_row_per_epoch_and_appends(tmp_path):
    x, y = data(12)
    path = tmp_path / "log.csv"
    model = tiny_model()
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0, callbacks=[CSVLogger(path)],
                        validation_data=(x, y))
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(history.history["val_loss"], rel=1e-12)
    model.fit(x, y, batch_size=4, epochs=3, initial_epoch=2, verbose=0,
              callbacks=[CSVLogger(path, append=True)], validation_data=(x, y))
    rows = list(csv.DictReader(path.open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert path.read_text().count("epoch") == 1


def test_csv_logger_without_validation_keeps_keras_columns(tmp_path):
    x, y = data(8)
    path = tmp_path / "log.csv"
    tiny_model().fit(x, y, epochs=1, verbose=0, callbacks=[CSVLogger(path, separator=";")])
    header, row = path.read_text().splitlines()
    assert header == "epoch;accuracy;loss;val_accuracy;val_loss" and row.endswith(";NA;NA")


# --------------------------------------------------------------------------- learning rate


def test_learning_rate_scheduler_sets_each_epochs_rate_and_logs_it():
    x, y = data(8)
    model = tiny_model(lr=0.1)
    seen = []

    class Spy(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(self.model.optimizer.learning_rate)

    history = model.fit(x, y, batch_size=8, epochs=3, verbose=0,
                        callbacks=[LearningRateScheduler(lambda epoch, lr: lr * 0.5), Spy()])
    assert seen == [0.05, 0.025, 0.0125]
    assert history.history["learning_rate"] == [0.05, 0.025, 0.0125]
    model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: 0.3)])
    assert model.optimizer.learning_rate == 0.3
    with pytest.raises(ValueError, match="the schedule must return a finite float; got None for epoch 0"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[LearningRateScheduler(lambda epoch: None)])


def test_reduce_lr_on_plateau_follows_keras_rule():
    model = Stub(lr=1.0)
    callback = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=2, min_lr=0.2)
    rates = []
    callback.set_model(model)
    callback.on_train_begin({})
    for epoch, value in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]):
        logs = {"val_loss": value}
        callback.on_epoch_end(epoch, logs)
        rates.append(model.optimizer.learning_rate)
        assert logs["learning_rate"] == (rates[-2] if epoch else 1.0)
    # reduce after 2 stalled epochs (epoch 2); the counter counts down at the start of epochs 3 and 4,
    # so only epoch 3 is spent cooling down; stalls 4 and 5 reduce again; ...; floor 0.2
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2]


# --------------------------------------------------------------------------- TerminateOnNaN


def diverging():
    """A model and data whose loss overflows within a few SGD steps (weights ~1e30, logits beyond float32)."""
    x, y = data(32)
    model = Sequential([Input((4, 4, 1)), Flatten(), Dense(3, activation="softmax", seed=0)])
    model.compile(SGD(learning_rate=1e20), loss="sparse_categorical_crossentropy")
    return model, x * 1e10, y


def test_a_non_finite_loss_raises_without_terminate_on_nan():
    model, x, y = diverging()
    with pytest.raises(FloatingPointError, match="add callbacks.TerminateOnNaN"):
        model.fit(x, y, batch_size=4, epochs=3, verbose=0)


def test_terminate_on_nan_stops_training_like_keras_and_keeps_finite_weights(capsys):
    model, x, y = diverging()
    recorder = Recorder()
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[TerminateOnNaN(), recorder])
    batch_losses = [c[2]["loss"] for c in recorder.calls if c[0] == "batch_end"]
    assert not math.isfinite(batch_losses[-1]) and all(map(math.isfinite, batch_losses[:-1]))
    assert len(history.epoch) == 1 and not math.isfinite(history.history["loss"][0])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    assert f"Batch {len(batch_losses) - 1}: Invalid loss, terminating training" in capsys.readouterr().out
    model, x, y = diverging()
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered"):
        model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[TerminateOnNaN(raise_error=True)])


# --------------------------------------------------------------------------- weights and batches


def test_sample_weight_scales_the_loss_as_keras_divides_by_the_batch_size():
    x, y = data(16)
    w = np.random.default_rng(3).uniform(0, 2, 16)
    model = tiny_model()
    p = model.predict(x)
    per_sample = -np.log(p[np.arange(16), y].astype(np.float64))
    assert model.evaluate(x, y, sample_weight=w, batch_size=16) == pytest.approx(
        [np.mean(w * per_sample), np.mean(p.argmax(1) == y)], rel=1e-5)
    doubled, faster = tiny_model(lr=0.1), tiny_model(lr=0.2)
    doubled.fit(x, y, batch_size=4, epochs=2, verbose=0, sample_weight=np.full(16, 2.0), seed=0)
    faster.fit(x, y, batch_size=4, epochs=2, verbose=0, seed=0)
    for a, b in zip(doubled.get_weights(), faster.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # weight 2 doubles every gradient: exactly a doubled rate


def test_class_weight_is_sample_weight_by_label():
    x, y = data(16)
    a, b = tiny_model(), tiny_model()
    a.fit(x, y, batch_size=4, epochs=2, verbose=0, class_weight={0: 3.0, 2: 0.5}, seed=0)
    b.fit(x, y, batch_size=4, epochs=2, verbose=0, sample_weight=np.array([3.0, 1.0, 0.5])[y], seed=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"class_weight": {0: 1.0}, "sample_weight": np.ones(8)}, ValueError, "class_weight or sample_weight"),
    ({"class_weight": {3: 1.0}}, ValueError, r"class_weight keys must be class indices 0..2; got 3"),
    ({"class_weight": [1.0, 2.0]}, TypeError, "class_weight must be a dict"),
    ({"sample_weight": np.ones(7)}, ValueError, "sample_weight must be 8 numbers, one per sample"),
    ({"sample_weight": -np.ones(8)}, ValueError, "must be finite and >= 0"),
    ({"steps_per_epoch": 3, "batch_size": 4}, ValueError, "steps_per_epoch=3 is more than the 2 batches"),
])
def test_weight_and_step_arguments_are_checked(kwargs, error, message):
    x, y = data(8)
    with pytest.raises(error, match=message):
        tiny_model().fit(x, y, verbose=0, **kwargs)


def test_steps_per_epoch_limits_each_epoch_over_arrays():
    x, y = data(40)
    recorder = Recorder()
    history = tiny_model().fit(x, y, batch_size=4, epochs=2, steps_per_epoch=3, verbose=0,
                               callbacks=[recorder])
    assert [c[1] for c in recorder.calls if c[0] == "batch_end"] == [0, 1, 2, 0, 1, 2]
    assert history.epoch == [0, 1]


def test_fit_on_a_generator_equals_fit_on_the_same_batches():
    x, y = data(24)

    def batches():
        while True:
            for begin in range(0, 24, 8):
                yield x[begin:begin + 8], y[begin:begin + 8]

    from_generator, from_arrays = tiny_model(), tiny_model()
    history = from_generator.fit(batches(), steps_per_epoch=3, epochs=2, verbose=0)
    from_arrays.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
    for a, b in zip(from_generator.get_weights(), from_arrays.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert history.params["steps"] == 3 and len(history.history["loss"]) == 2


def test_a_generator_that_runs_out_stops_training_with_a_warning():
    x, y = data(16)
    finite = ((x[i:i + 4], y[i:i + 4], np.ones(4)) for i in range(0, 16, 4))
    with pytest.warns(UserWarning, match="the input ran out of batches after 0 in epoch 2"):
        history = tiny_model().fit(finite, epochs=5, verbose=0)
    assert history.epoch == [0]
    with pytest.raises(ValueError, match=r"each batch from the iterator must be a tuple \(x, y\)"):
        tiny_model().fit(iter([x]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="when x is an iterator of batches it yields the labels"):
        tiny_model().fit(iter([(x, y)]), y, epochs=1, verbose=0)
