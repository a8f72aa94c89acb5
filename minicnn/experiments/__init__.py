"""The experiment machinery around the framework: what a k-fold study of a model needs.

- :mod:`~minicnn.experiments.crossval`: k-fold cross-validation and hold-out testing,
  with Keras' ``fit``/``evaluate`` verbs only, so Keras models run through it too;
- :mod:`~minicnn.experiments.evaluation`: confusion matrix, per-class report and PNG plots;
- :mod:`~minicnn.experiments.results`: the ``results.json`` schema shared with the Keras baseline;
- :mod:`~minicnn.experiments.published_model`: the published Keras MNIST CNN.

Nothing in the framework (layers, model, kernels) imports from here.
"""
