"""``keras.initializers``: minicnn's kernel initialisers, under Keras' names.

minicnn's layers take an initialiser by name, as Keras' accept one:
``Dense(10, kernel_initializer="he_normal")`` (or Keras' class name, ``"HeNormal"``). The names
are those of the functions here, which draw the values: ``he_normal(shape, fan_in, fan_out, rng)``
(:mod:`minicnn.layers.initializers` has their maths). minicnn has no initialiser objects, so
``keras.initializers.HeNormal(seed=0)`` and the initialisers minicnn lacks raise
:class:`~minicnn.missing.MissingFeatureError` saying so.
"""

from minicnn import missing
from minicnn.layers.initializers import glorot_uniform, he_normal, he_uniform, zeros

__all__ = ["glorot_uniform", "he_normal", "he_uniform", "zeros"]

__getattr__ = missing.module_getattr(__name__)
