"""Training a model: the Keras verbs a model inherits (:mod:`minicnn.trainers.trainer`) and the
data they train on, as epochs of batches (:mod:`minicnn.trainers.data_adapters`)."""
