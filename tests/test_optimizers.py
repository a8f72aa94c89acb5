"""The optimizers (:mod:`minicnn.optimizers`) against their papers' and Keras' update rules, written out
here in float64 (the Keras comparison is in ``keras_parity/test_optimizers.py``)."""

import numpy as np
import pytest

from minicnn import SGD, Adam, Dense, Flatten, Input, RMSprop, Sequential, load_model, optimizers
from minicnn import metrics as m
from minicnn.schedules import CosineDecay, ExponentialDecay


def adam_epsilon_hat(theta, grads, lr, b1, b2, eps_hat):
    """The same update written the paper's "efficient" way (section 2), epsilon hat included."""
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        alpha_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        theta = theta - alpha_t * m / (np.sqrt(v) + eps_hat)
    return theta


@pytest.mark.parametrize("steps", [1, 10])
def test_adam_matches_the_paper_with_epsilon_hat(steps):
    rng = np.random.default_rng(0)
    theta0 = rng.standard_normal(50)
    grads = [rng.standard_normal(50) * 1e-3 for _ in range(steps)]  # small: epsilon matters
    opt = Adam(learning_rate=0.01, epsilon=1e-4)
    theta = theta0.copy()
    for g in grads:
        opt.apply_gradients([("w", theta, g)])
    expected = adam_epsilon_hat(theta0, grads, 0.01, 0.9, 0.999, 1e-4)
    np.testing.assert_allclose(theta, expected, rtol=1e-12)
    # The paper's epsilon would give a measurably different answer here.
    eps_paper = theta0.copy()
    m = v = 0
    for t, g in enumerate(grads, start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        eps_paper -= 0.01 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-4)
    assert np.abs(eps_paper - expected).max() > 1e-6


def test_adam_keeps_its_moments_across_steps_and_parameters():
    opt = Adam()
    a, b = np.zeros(3, np.float32), np.zeros(2, np.float32)
    for _ in range(3):
        opt.apply_gradients([("a", a, np.ones(3, np.float32)), ("b", b, -np.ones(2, np.float32))])
    assert opt.iterations == 3
    assert set(opt.state) == {"a", "b"}
    # Constant gradient: each bias-corrected step is lr * 1 / (1 + eps), so 3 steps move 3 * lr.
    np.testing.assert_allclose(a, -0.003, rtol=1e-4)
    np.testing.assert_allclose(b, 0.003, rtol=1e-4)
    assert a.dtype == np.float32 and opt.state["a"]["m"].dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_numba_kernel_matches_reference(dtype):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal((7, 5)).astype(dtype) for _ in range(3)]
    v = rng.random((7, 5)).astype(dtype)
    fast = [a.copy() for a in (*arrays, v)]
    slow = [a.copy() for a in (*arrays, v)]
    optimizers.adam_update_numba(*fast, 0.01, 0.9, 0.999, 1e-7)
    optimizers.adam_update_reference(*slow, 0.01, 0.9, 0.999, 1e-7)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-7 if dtype == np.float32 else 1e-15)
    assert not np.array_equal(fast[0], arrays[0])  # the parameter moved, in place


def test_sgd_momentum_matches_keras_rule():
    opt = SGD(learning_rate=0.1, momentum=0.9)
    w = np.array([1.0])
    velocity = 0.0
    expected = 1.0
    for g in (0.5, -0.2, 0.3):
        opt.apply_gradients([("w", w, np.array([g]))])
        velocity = 0.9 * velocity - 0.1 * g
        expected += velocity
    np.testing.assert_allclose(w, expected, rtol=1e-12)


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


def test_an_optimizer_follows_its_schedule_step_by_step():
    """SGD's step is lr(t) * grad with t = steps taken before (0 first), as Keras counts."""
    optimizer = SGD(learning_rate=ExponentialDecay(1.0, decay_steps=1, decay_rate=0.5))
    after = steps(optimizer, [np.ones(1)] * 3, np.zeros(1))
    assert [a[0] for a in after] == [-1.0, -1.5, -1.75]
    assert optimizer.learning_rate == 0.125
    with pytest.raises(TypeError, match="the learning rate follows ExponentialDecay"):
        optimizer.learning_rate = 0.1


def test_optimizer_rejects_mismatched_gradient():
    with pytest.raises(ValueError, match="shape"):
        Adam().apply_gradients([("w", np.zeros(3), np.zeros(4))])


@pytest.mark.parametrize("make", [lambda: Adam(learning_rate=0), lambda: Adam(beta_1=1.0),
                                  lambda: SGD(momentum=-0.1)])
def test_optimizer_arguments_are_checked(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("make,message", [
    (lambda: RMSprop(rho=1.0), "rho"),
    (lambda: RMSprop(epsilon=0), "epsilon"),
    (lambda: SGD(learning_rate=-1), "learning_rate"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


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
