"""The one check of integer arguments and the one of positive numbers, and the messages callers get."""

import numpy as np
import pytest

from minicnn import SGD, Adam, RMSprop, threads
from minicnn.metrics import TopKCategoricalAccuracy
from minicnn.schedules import CosineDecay, ExponentialDecay
from minicnn.validation import check_int, check_positive


def test_check_int_takes_integers_from_the_minimum_up():
    assert check_int(np.int64(3), "f: n", minimum=2) == 3 and type(check_int(np.int64(3), "f: n", 2)) is int
    assert check_int(0, "f: n", minimum=0) == 0
    for bad in (1, 2.0, True, "3", None):
        with pytest.raises(ValueError, match=rf"^f: n must be an integer >= 2; got {bad!r}$"):
            check_int(bad, "f: n", minimum=2)


def test_check_positive_takes_real_numbers_above_zero():
    assert check_positive(np.float32(0.5), "f: x") == 0.5 and check_positive(3, "f: x") == 3.0
    for bad in (0, -1e-9, float("nan"), True, "1", None, 1j):
        with pytest.raises(ValueError, match=r"^f: x must be a number > 0; got "):
            check_positive(bad, "f: x")


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Adam(learning_rate=0), "Adam: learning_rate must be a number > 0; got 0"),
    (lambda: SGD(learning_rate="0.1"), "SGD: learning_rate must be a number > 0; got '0.1'"),
    (lambda: Adam(epsilon=0.0), "Adam: epsilon must be a number > 0; got 0.0"),
    (lambda: RMSprop(epsilon=-1.0), "RMSprop: epsilon must be a number > 0; got -1.0"),
    (lambda: ExponentialDecay(1e-3, 0, 0.9), "ExponentialDecay: decay_steps must be a number > 0; got 0"),
    (lambda: CosineDecay(1e-3, 10, warmup_target=0.0), "CosineDecay: warmup_target must be a number > 0"),
    (lambda: TopKCategoricalAccuracy(k=0), "TopKCategoricalAccuracy: k must be an integer >= 1; got 0"),
    (lambda: threads.set_num_threads(0), "set_num_threads: n must be an integer >= 1; got 0"),
])
def test_callers_name_themselves_and_the_argument(make, message):
    with pytest.raises(ValueError) as caught:
        make()
    assert str(caught.value).startswith(message)
