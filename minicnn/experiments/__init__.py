"""The experiment machinery around the framework: what a k-fold study of a model needs, and the
CIFAR-10 example's protocol.

- :mod:`~minicnn.experiments.crossval`: k-fold cross-validation and hold-out testing,
  with Keras' ``fit``/``evaluate`` verbs only, so Keras models run through it too;
  folds in parallel (joblib: local processes, Dask, Ray), resumable;
- :mod:`~minicnn.experiments.parallel`: joblib tasks, each worker with its share of the cores;
- :mod:`~minicnn.experiments.checkpoints`: epoch checkpoints, to continue an interrupted training;
- :mod:`~minicnn.experiments.rundir`: one run per output folder (a lock), parts that name their run;
- :mod:`~minicnn.experiments.data`: the datasets of a run, their splits and their fingerprint;
- :mod:`~minicnn.experiments.protocol`: the published protocol's settings and derived seeds;
- :mod:`~minicnn.experiments.cli`: the command line shared by the example and the Keras baseline;
- :mod:`~minicnn.experiments.evaluation`: confusion matrix, per-class report and PNG plots;
- :mod:`~minicnn.experiments.results`: the ``results.json`` schema shared with the Keras baseline;
- :mod:`~minicnn.experiments.published_model`: the published Keras MNIST CNN;
- :mod:`~minicnn.experiments.cifar10`: the CIFAR-10 example's protocol, shared with its Keras twin.

Nothing in the framework (layers, model, kernels) imports from here.
"""
