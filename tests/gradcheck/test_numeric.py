"""The numerics of a check (:mod:`minicnn.gradcheck.numeric`): which entries are sampled, and the hints
a constant ratio between analytic and numeric gradients gives."""

import numpy as np
import pytest

from minicnn import gradcheck


def test_sampling_covers_corners_faces_and_nonzero_entries():
    analytic = np.zeros((2, 5, 6, 3))
    analytic[1, 2, 3, 1] = 1.0
    chosen = gradcheck.choose_entries(analytic, 3, np.random.default_rng(0))
    picked = {np.unravel_index(i, analytic.shape) for i in chosen}
    assert (1, 2, 3, 1) in picked
    assert {(n, h, w, c) for n in (0, 1) for h in (0, 4) for w in (0, 5) for c in (0, 2)} <= picked
    assert len(gradcheck.choose_entries(analytic, None, np.random.default_rng(0))) == analytic.size
    for axis in range(4):
        for end in (0, analytic.shape[axis] - 1):
            assert sum(index[axis] == end for index in picked) >= gradcheck.EDGE_CHECKS


@pytest.mark.parametrize("analytic,numeric,factors,expected", [
    ([0.5, -1.0, 2.0], [1.0, -2.0, 4.0], [], "analytic = 0.5 x numeric at every checked entry: a missing or "
                                               "extra constant factor = 1/2"),
    ([-1.0, 2.0], [1.0, -2.0], [], "the sign is wrong"),
    ([0.75, 1.5], [1.0, 2.0], [(0.75, "the dropout scale is missing")], "the dropout scale is missing"),
    ([0.0, 1.0, 0.0], [1.0, 0.0, 2.0], [], "analytic is 0 at 2 entries where numeric is not"),
    ([1.0, 2.1, 2.9], [1.0, 2.0, 3.0], [], "no constant factor"),
])
def test_factor_hints(analytic, numeric, factors, expected):
    assert expected in gradcheck.factor_hint(np.array(analytic), np.array(numeric), factors)
