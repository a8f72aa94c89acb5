"""The learning-rate schedules (:mod:`minicnn.schedules`) against Keras' at every step.

Skipped without TensorFlow: ``pip install -e ".[keras]"``.
"""

import os

import pytest

from minicnn import schedules

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads: no C++ start-up chatter
tf = pytest.importorskip("tensorflow", reason='the Keras parity tests need pip install -e ".[keras]"')
keras = pytest.importorskip("keras", reason='the Keras parity tests need pip install -e ".[keras]"')


@pytest.mark.parametrize("ours,theirs", [
    (schedules.ExponentialDecay(0.1, 7, 0.3), keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.3)),
    (schedules.ExponentialDecay(0.1, 7, 0.3, staircase=True),
     keras.optimizers.schedules.ExponentialDecay(0.1, 7, 0.3, staircase=True)),
    (schedules.CosineDecay(0.1, 20, alpha=0.2), keras.optimizers.schedules.CosineDecay(0.1, 20, alpha=0.2)),
    (schedules.CosineDecay(0.0, 20, warmup_target=0.5, warmup_steps=5),
     keras.optimizers.schedules.CosineDecay(0.0, 20, warmup_target=0.5, warmup_steps=5)),
])
def test_schedules_match_keras(ours, theirs):
    """Every step from 0 to 40. Keras computes in float32: near the end of a cosine decay
    ``1 + cos(pi * t)`` cancels, so the bound is relative to the schedule's peak rate: a few
    float32 roundings of it, 2.5e-7 (measured: 3e-8 ExponentialDecay, 5.6e-8 CosineDecay,
    9.4e-8 with warm-up)."""
    peak = max(ours(step) for step in range(41))
    for step in range(41):
        assert abs(ours(step) - float(theirs(step))) <= 2.5e-7 * peak, step
