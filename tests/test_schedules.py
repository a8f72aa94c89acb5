"""The learning-rate schedules (:mod:`minicnn.schedules`) against their formulas (the Keras comparison is
in ``keras_parity/test_schedules.py``)."""

import math

import pytest

from minicnn.schedules import CosineDecay, ExponentialDecay


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


@pytest.mark.parametrize("make,message", [
    (lambda: ExponentialDecay(0.1, 0, 0.5), "decay_steps"),
    (lambda: CosineDecay(0.1, 10, alpha=2), "alpha"),
])
def test_bad_settings_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()
