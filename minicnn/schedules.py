"""Learning-rate schedules: a learning rate that changes with the optimizer's step count.

Pass one as an optimizer's ``learning_rate`` (``Adam(learning_rate=ExponentialDecay(1e-3, 1000, 0.9))``);
the optimizer asks it for the rate at every step, with ``step`` = the number of steps taken
before this one (0 at the first), as Keras does. The formulas are Keras'.
"""

from __future__ import annotations

import math

from minicnn import missing
from minicnn.registry import SCHEDULES
from minicnn.validation import check_positive

__all__ = ["CosineDecay", "ExponentialDecay", "LearningRateSchedule", "deserialize", "serialize"]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing


class LearningRateSchedule:
    """Base class: ``schedule(step)`` is the learning rate for the step ``step`` (from 0)."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


@SCHEDULES.register()
class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with ``staircase`` the
    exponent is rounded down, so the rate drops once every ``decay_steps`` steps."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, decay_rate: float,
                 staircase: bool = False, name: str = "ExponentialDecay"):
        self.initial_learning_rate = check_positive(initial_learning_rate,
                                                    "ExponentialDecay: initial_learning_rate")
        self.decay_steps = check_positive(decay_steps, "ExponentialDecay: decay_steps")
        self.decay_rate = check_positive(decay_rate, "ExponentialDecay: decay_rate")
        self.staircase, self.name = bool(staircase), name

    def __call__(self, step: int) -> float:
        p = step / self.decay_steps
        return self.initial_learning_rate * self.decay_rate ** (math.floor(p) if self.staircase else p)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate, "staircase": self.staircase, "name": self.name}


@SCHEDULES.register()
class CosineDecay(LearningRateSchedule):
    """Cosine decay from the initial rate (or ``warmup_target`` after a linear warm-up of
    ``warmup_steps``) down to ``alpha`` times it over ``decay_steps`` steps, then constant."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, alpha: float = 0.0,
                 name: str = "CosineDecay", warmup_target: float | None = None, warmup_steps: int = 0):
        self.initial_learning_rate = float(initial_learning_rate)
        if not self.initial_learning_rate >= 0:
            raise ValueError(f"CosineDecay: initial_learning_rate must be >= 0; "
                             f"got {initial_learning_rate!r}")
        self.decay_steps = check_positive(decay_steps, "CosineDecay: decay_steps")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"CosineDecay: alpha must be in [0, 1]; got {alpha!r}")
        if warmup_target is not None:
            warmup_target = check_positive(warmup_target, "CosineDecay: warmup_target")
        if warmup_steps < 0:
            raise ValueError(f"CosineDecay: warmup_steps must be >= 0; got {warmup_steps!r}")
        self.alpha, self.name = float(alpha), name
        self.warmup_target, self.warmup_steps = warmup_target, warmup_steps

    def _decay(self, step: float, start: float) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * step / self.decay_steps))
        return start * ((1 - self.alpha) * cosine + self.alpha)

    def __call__(self, step: int) -> float:
        if self.warmup_target is None:
            return self._decay(min(step, self.decay_steps), self.initial_learning_rate)
        step = min(step, self.decay_steps + self.warmup_steps)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return (self.warmup_target - self.initial_learning_rate) * fraction + self.initial_learning_rate
        return self._decay(step - self.warmup_steps, self.warmup_target)

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.decay_steps,
                "alpha": self.alpha, "name": self.name, "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps}


def serialize(schedule: LearningRateSchedule) -> dict:
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(spec: dict) -> LearningRateSchedule:
    return SCHEDULES.get(spec["class_name"])(**spec["config"])
