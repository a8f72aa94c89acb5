"""Models (Keras' ``keras.models``): :class:`Sequential`, and saving and loading one.

:mod:`minicnn.models.sequential` holds the model: its layers, weights, and the forward and
backward pass; :mod:`minicnn.models.summary` its table. The verbs that train it are in
:mod:`minicnn.trainers`.
"""

from minicnn import missing
from minicnn.models.sequential import Sequential, load_model, model_from_json
from minicnn.saving import save_model

__all__ = ["Sequential", "load_model", "model_from_json", "save_model"]

__getattr__ = missing.module_getattr(__name__)  # Keras' names minicnn lacks: see minicnn.missing
