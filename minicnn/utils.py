"""``keras.utils``: the utilities minicnn has, under Keras' names.

:func:`to_categorical` (one-hot labels, from :mod:`minicnn.losses`) and :func:`set_random_seed`
(every later unseeded draw repeatable, from :mod:`minicnn.seeding`). minicnn draws no model
graphs (``plot_model``: ``model.summary()`` prints the layers instead) and reads no image
folders; those and Keras' other utilities raise :class:`~minicnn.missing.MissingFeatureError`
saying what minicnn offers instead (:data:`minicnn.missing.MISSING`).
"""

from minicnn import missing
from minicnn.losses import to_categorical
from minicnn.seeding import set_random_seed

__all__ = ["set_random_seed", "to_categorical"]

__getattr__ = missing.module_getattr(__name__)
