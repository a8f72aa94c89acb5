"""The fused loss against its definition; Adam and SGD against their papers' formulas."""

import numpy as np
import pytest

from minicnn import SGD, Adam, optimizers, to_categorical
from minicnn.losses import softmax_cross_entropy


def test_loss_and_gradient_match_the_definition():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((6, 4))
    y = to_categorical(rng.integers(0, 4, 6), 4, np.float64)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    loss, dz = softmax_cross_entropy(z, y)
    assert loss == pytest.approx(-np.mean(np.log(p[y == 1])), rel=1e-12)
    np.testing.assert_allclose(dz, (p - y) / 6, rtol=1e-12)


def test_loss_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4]], np.float32)
    loss, dz = softmax_cross_entropy(z, np.array([[0, 0, 1]], np.float32))
    assert loss == pytest.approx(2e4, rel=1e-6)  # log-sum-exp, not log(0)
    assert np.isfinite(dz).all()
    assert dz.dtype == np.float32


@pytest.mark.parametrize("labels,message", [
    ([0, 1, 10], r"\[0, 10\)"), ([-1, 2], r"\[0, 10\)"), ([0.5, 1], "whole numbers"),
    ([[0, 1]], r"shape \(N,\)"),
])
def test_to_categorical_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        to_categorical(labels, 10)


def test_to_categorical():
    np.testing.assert_array_equal(to_categorical([2, 0], 3), [[0, 0, 1], [1, 0, 0]])


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


def test_optimizer_rejects_mismatched_gradient():
    with pytest.raises(ValueError, match="shape"):
        Adam().apply_gradients([("w", np.zeros(3), np.zeros(4))])


@pytest.mark.parametrize("make", [lambda: Adam(learning_rate=0), lambda: Adam(beta_1=1.0),
                                  lambda: SGD(momentum=-0.1)])
def test_optimizer_arguments_are_checked(make):
    with pytest.raises(ValueError):
        make()
