"""The optimizers' steps (:mod:`minicnn.optimizers`), fed identical gradients, against Keras' optimizers.

Skipped without TensorFlow: ``pip install -e ".[keras]"``.
"""

import os

import numpy as np
import pytest
from conftest import published_model

from minicnn import SGD, Adam, RMSprop, schedules

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ start-up chatter
tf = pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
keras = pytest.importorskip("keras", reason='the Keras parity tests need pip install -e ".[keras]"')


def test_adam_steps_match_keras():
    """One, then ten Adam steps on the published model's weights, fed identical gradients.

    Gradients span 1e-9 to 1 in size, so the steps where ``epsilon`` matters are
    covered: adding it before instead of after the bias correction changes such
    steps by ~5e-4. Bound per step: Keras computes the bias correction
    ``sqrt(1 - beta_2**t) / (1 - beta_1**t)`` in float32 (relative error up to
    1e-5 for t <= 10), minicnn in float64, so each step's size (<= ~lr = 1e-3)
    may differ by 2e-8 (twice that); plus one float32 rounding of the weight,
    ``spacing(max |w|)`` (1.5e-8 here). Measured: 1.5e-8 after one step, 9e-8 after ten.
    """
    weights = published_model().get_weights()
    ours = [w.copy() for w in weights]
    theirs = [keras.Variable(w) for w in weights]
    optimizer = Adam(learning_rate=1e-3, epsilon=1e-7)
    reference = keras.optimizers.Adam(learning_rate=1e-3, epsilon=1e-7)
    rng = np.random.default_rng(0)
    per_step = 2e-8 + np.spacing(max(np.abs(w).max() for w in weights))
    for step in range(1, 11):
        grads = [(rng.standard_normal(w.shape) * 10.0 ** rng.uniform(-9, 0, w.shape)).astype(np.float32)
                 for w in weights]
        optimizer.apply_gradients((f"w{i}", p, g) for i, (p, g) in enumerate(zip(ours, grads, strict=True)))
        reference.apply_gradients(zip(grads, theirs, strict=True))
        if step in (1, 10):
            diff = max(np.abs(a - b.numpy()).max() for a, b in zip(ours, theirs, strict=True))
            moved = min(np.abs(a - w).max() for a, w in zip(ours, weights, strict=True))
            assert diff <= step * per_step, (step, diff)
            assert moved > 100 * step * per_step  # every tensor moved, far beyond the bound


def run_steps(ours, theirs, weights, grads_per_step):
    mine = [w.copy() for w in weights]
    variables = [keras.Variable(w) for w in weights]
    for grads in grads_per_step:
        ours.apply_gradients((f"w{i}", p, g) for i, (p, g) in enumerate(zip(mine, grads, strict=True)))
        theirs.apply_gradients(zip(grads, variables, strict=True))
    return max(np.abs(a - b.numpy()).max() for a, b in zip(mine, variables, strict=True))


k_opt = keras.optimizers


OPTIMIZER_STEPS = {
    "rmsprop": (lambda: RMSprop(), lambda: keras.optimizers.RMSprop()),
    "rmsprop_centered_momentum": (lambda: RMSprop(0.01, rho=0.8, momentum=0.5, centered=True),
                                  lambda: k_opt.RMSprop(0.01, rho=0.8, momentum=0.5, centered=True)),
    "sgd_nesterov": (lambda: SGD(0.1, momentum=0.9, nesterov=True),
                     lambda: keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)),
    "sgd_cosine_decay": (lambda: SGD(schedules.CosineDecay(0.1, 8, alpha=0.1)),
                         lambda: k_opt.SGD(k_opt.schedules.CosineDecay(0.1, 8, alpha=0.1))),
    "adam_exponential_staircase": (
        lambda: Adam(schedules.ExponentialDecay(1e-2, 3, 0.5, staircase=True)),
        lambda: k_opt.Adam(k_opt.schedules.ExponentialDecay(1e-2, 3, 0.5, staircase=True))),
}


@pytest.mark.parametrize("name", OPTIMIZER_STEPS)
def test_optimizer_steps_match_keras(name):
    """Ten steps on weights of size ~1, fed identical gradients spanning 1e-9 to 1 in size.

    Both compute in float32; the learning rate (and Adam's bias correction) is computed in
    float64 by minicnn and in float32 by Keras. Keras' ``1 - beta_2**t`` in float32 is off by
    up to 1e-5 relative for t <= 10 (see test_adam_steps_match_keras), so each Adam step of size
    <= lr = 1e-2 may differ by 1e-7: bound 1e-6 absolute after ten steps. Measured: 0 (bit-equal)
    for RMSprop and SGD with Nesterov momentum, 6e-8 with CosineDecay, 4.8e-7 for Adam.
    """
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal(shape).astype(np.float32) for shape in ((3, 3, 2, 4), (4,), (20, 3))]
    grads = [[(rng.standard_normal(w.shape) * 10.0 ** rng.uniform(-9, 0, w.shape)).astype(np.float32)
              for w in weights] for _ in range(10)]
    ours, theirs = OPTIMIZER_STEPS[name]
    assert run_steps(ours(), theirs(), weights, grads) <= 1e-6
