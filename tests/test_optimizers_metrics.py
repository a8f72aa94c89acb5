"""RMSprop, SGD with Nesterov momentum, learning-rate schedules and the metrics, against their
definitions written out here in float64 (the Keras comparison is in test_keras_parity_more.py)."""

import math

import numpy as np
import pytest

from minicnn import SGD, Adam, Dense, Flatten, Input, RMSprop, Sequential, load_model
from minicnn import metrics as m
from minicnn.schedules import CosineDecay, ExponentialDecay


def steps(optimizer, grads, w0):
    """Apply each of ``grads`` as one step to a copy of ``w0``; the weights after each step."""
    w = w0.copy()
    out = []
    for g in grads:
        optimizer.apply_gradients([("w", w, g)])
        out.append(w.copy())
    return out


@pytest.mark.parametrize("centered,momentum", [(False, 0.0), (True, 0.0), (False, 0.5), (True, 0.9)])
def test_rmsprop_follows_keras_rule(centered, momentum):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) * 10.0 ** rng.uniform(-4, 1) for _ in range(6)]
    ours = steps(RMSprop(0.01, rho=0.8, momentum=momentum, epsilon=1e-3, centered=centered), grads, w0)
    w, v, g_avg, mom = w0.copy(), np.zeros(5), np.zeros(5), np.zeros(5)
    for g, after in zip(grads, ours, strict=True):
        v = 0.8 * v + 0.2 * g**2
        g_avg = 0.8 * g_avg + 0.2 * g
        increment = 0.01 * g / np.sqrt((v - g_avg**2 if centered else v) + 1e-3)
        mom = momentum * mom + increment
        w = w - (mom if momentum else increment)
        np.testing.assert_allclose(after, w, rtol=1e-12)


def test_rmsprop_has_keras_defaults():
    config = RMSprop().get_config()
    assert config == {"rho": 0.9, "momentum": 0.0, "epsilon": 1e-7, "centered": False, "learning_rate": 0.001}


def test_sgd_nesterov_looks_ahead():
    rng = np.random.default_rng(1)
    w0, grads = rng.standard_normal(4), [rng.standard_normal(4) for _ in range(4)]
    ours = steps(SGD(0.1, momentum=0.9, nesterov=True), grads, w0)
    w, velocity = w0.copy(), np.zeros(4)
    for g, after in zip(grads, ours, strict=True):
        velocity = 0.9 * velocity - 0.1 * g
        w = w + 0.9 * velocity - 0.1 * g
        np.testing.assert_allclose(after, w, rtol=1e-12)
    plain = steps(SGD(0.1, momentum=0.9), grads, w0)
    assert not np.allclose(plain[-1], ours[-1])


def test_exponential_decay_and_cosine_decay_formulas():
    decay = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert [decay(s) for s in (0, 5, 10, 20)] == pytest.approx([0.1, 0.1 * 0.5**0.5, 0.05, 0.025], rel=1e-15)
    stairs = ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert [stairs(s) for s in (0, 9, 10, 19, 20)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    cosine = CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert [cosine(s) for s in (0, 50, 100, 200)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    warm = CosineDecay(0.0, decay_steps=10, warmup_target=1.0, warmup_steps=4)
    assert [warm(s) for s in (0, 2, 4, 9, 14, 30)] == pytest.approx(
        [0.0, 0.5, 1.0, 0.5 * (1 + math.cos(math.pi * 0.5)), 0.0, 0.0], abs=1e-15)


def test_an_optimizer_follows_its_schedule_step_by_step():
    """SGD's step is lr(t) * grad with t = steps taken before (0 first), as Keras counts."""
    optimizer = SGD(learning_rate=ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5))
    after = steps(optimizer, [np.ones(1)] * 3, np.zeros(1))
    assert [a[0] for a in after] == [-1.0, -1.5, -1.75]
    assert optimizer.learning_rate == 0.125
    with pytest.raises(TypeError, match="the learning rate follows ExponentialDecay"):
        optimizer.learning_rate = 0.1


@pytest.mark.parametrize("make,message", [
    (lambda: RMSprop(rho=1.0), "rho"), (lambda: RMSprop(epsilon=0), "epsilon"),
    (lambda: SGD(learning_rate=-1), "learning_rate"), (lambda: ExponentialDecay(0.1, 0, 0.5), "decay_steps"),
    (lambda: CosineDecay(0.1, 10, alpha=2), "alpha"), (lambda: m.TopKCategoricalAccuracy(k=0), "k must be"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --------------------------------------------------------------------------- metrics


def test_accuracy_metrics_by_their_definition():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.4, 0.1], [0.3, 0.3, 0.4], [0.2, 0.2, 0.6]])
    labels = np.array([1, 1, 0, 2])
    one_hot = np.eye(3)[labels]
    np.testing.assert_array_equal(m.CategoricalAccuracy()(one_hot, scores), [1, 0, 0, 1])
    np.testing.assert_array_equal(m.SparseCategoricalAccuracy()(labels, scores), [1, 0, 0, 1])
    np.testing.assert_array_equal(m.SparseCategoricalAccuracy()(labels[:, None], scores), [1, 0, 0, 1])
    np.testing.assert_array_equal(m.TopKCategoricalAccuracy(k=2)(one_hot, scores), [1, 1, 1, 1])
    np.testing.assert_array_equal(m.SparseTopKCategoricalAccuracy(k=1)(labels, scores), [1, 0, 0, 1])


def test_top_k_counts_ties_as_in_top_k():
    """in_top_k: a class is in the top k when fewer than k classes score strictly higher."""
    scores = np.array([[0.2, 0.2, 0.2, 0.4]])
    assert m.SparseTopKCategoricalAccuracy(k=2)([0], scores)[0] == 1.0  # one higher: 0.4
    assert m.SparseTopKCategoricalAccuracy(k=1)([0], scores)[0] == 0.0
    assert m.SparseTopKCategoricalAccuracy(k=2)([3], scores)[0] == 1.0


def model_with(metrics, loss="sparse_categorical_crossentropy"):
    model = Sequential([Input((6,)), Dense(7, activation="softmax", seed=0)])
    model.compile("adam", loss=loss, metrics=metrics)
    return model


def test_fit_and_evaluate_report_every_metric_under_its_name():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((50, 6)).astype(np.float32), rng.integers(0, 7, 50)
    model = model_with(["acc", "sparse_top_k_categorical_accuracy", m.SparseTopKCategoricalAccuracy(k=2,
                                                                                                   name="top2")])
    assert model.metrics_names == ["loss", "acc", "sparse_top_k_categorical_accuracy", "top2"]
    p = model.predict(x)
    rank = (p > p[np.arange(50), y][:, None]).sum(axis=1)  # classes scored above the label
    scores = model.evaluate(x, y, batch_size=7, return_dict=True)
    assert scores["acc"] == pytest.approx(np.mean(p.argmax(1) == y))
    assert scores["sparse_top_k_categorical_accuracy"] == pytest.approx(np.mean(rank < 5))
    assert scores["top2"] == pytest.approx(np.mean(rank < 2))
    assert model.evaluate(x, y, batch_size=7) == [scores[name] for name in model.metrics_names]
    history = model.fit(x, y, epochs=1, verbose=0, validation_data=(x, y))
    assert set(history.history) == {"loss", "acc", "sparse_top_k_categorical_accuracy", "top2", "val_loss",
                                    "val_acc", "val_sparse_top_k_categorical_accuracy", "val_top2"}


def test_compile_rejects_unknown_or_duplicate_metrics():
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        model_with(["f1"])
    with pytest.raises(ValueError, match="metric names must be unique"):
        model_with(["accuracy", "accuracy"])


def test_new_optimizers_schedules_and_metrics_go_on_training_bit_identically_after_load(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 2, 3, 1)).astype(np.float32), rng.integers(0, 4, 40)
    for optimizer in (RMSprop(learning_rate=CosineDecay(0.01, 30), momentum=0.5, centered=True),
                      SGD(learning_rate=ExponentialDecay(0.1, 5, 0.7, staircase=True), momentum=0.9,
                          nesterov=True),
                      Adam(learning_rate=ExponentialDecay(1e-3, 10, 0.5))):
        model = Sequential([Input((2, 3, 1)), Flatten(), Dense(4, activation="softmax", seed=1)])
        model.compile(optimizer, loss="sparse_categorical_crossentropy",
                      metrics=["accuracy", m.TopKCategoricalAccuracy(k=2, name="top2")])
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, seed=0)
        model.save(tmp_path / "m.npz")
        loaded = load_model(tmp_path / "m.npz")
        assert repr(loaded.optimizer.get_config()) == repr(model.optimizer.get_config())
        assert [repr(a) for a in loaded.metrics] == [repr(b) for b in model.metrics]
        a = model.fit(x, y, batch_size=8, epochs=3, initial_epoch=1, verbose=0, seed=0).history
        b = loaded.fit(x, y, batch_size=8, epochs=3, initial_epoch=1, verbose=0, seed=0).history
        assert a == b
        for wa, wb in zip(model.get_weights(), loaded.get_weights(), strict=True):
            np.testing.assert_array_equal(wa, wb)
