"""What minicnn lacks of Keras' namespaces, and the error that says what it offers instead.

``import minicnn as keras`` runs Keras code that stays within what minicnn has. A Keras path
minicnn lacks (``keras.Model``, ``keras.ops``, ``keras.layers.LSTM``, ...) raises a
:class:`MissingFeatureError` naming what is missing and what minicnn offers instead, rather
than the bare ``module 'minicnn' has no attribute 'Model'``. Each namespace module gets its
``__getattr__`` from :func:`module_getattr`; :data:`MISSING` holds the Keras names each one
lacks and their messages, the same list as ``docs/keras.md``. Only those names get the
explanation: any other unknown name is Python's plain AttributeError, and none of these names
appears in ``dir()`` of its namespace, which lists only what works.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class MissingFeatureError(AttributeError):
    """A Keras name minicnn does not have; the message says what minicnn offers instead.

    It is an AttributeError on purpose. Python's protocols read a module attribute that raises
    AttributeError as "not there": ``hasattr(keras, "ops")`` is False and
    ``getattr(keras, "Model", None)`` is None (code that probes for Keras features keeps
    working), ``unittest.mock``, ``inspect``, ``pydoc`` and doctest skip the name, and
    ``from minicnn import Model`` is an ImportError as for any missing name (Python replaces
    the message there). Any other exception would break all of those, so the explanation
    travels in an AttributeError subclass: the traceback prints
    ``minicnn.missing.MissingFeatureError: minicnn has no functional Model ...``, never the
    bare ``AttributeError: module 'minicnn' has no attribute 'Model'``.
    """


def module_getattr(module: str) -> Callable[[str], object]:
    """The ``__getattr__`` of the namespace ``module``: MissingFeatureError for the Keras names in
    ``MISSING[module]``, Python's usual AttributeError for any other unknown name."""
    missing = MISSING[module]

    def __getattr__(name: str) -> object:
        if name in missing:
            raise MissingFeatureError(missing[name], name=name)
        raise AttributeError(f"module {module!r} has no attribute {name!r}", name=name,
                             obj=sys.modules[module])

    return __getattr__


def _each(names: str, message: str) -> dict[str, str]:
    """``{name: message}`` for each of the space-separated Keras ``names``, ``{name}`` filled in."""
    return {name: message.format(name=name) for name in names.split()}


_LAYERS = ("Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten, "
           "GlobalAveragePooling2D, Input, LeakyReLU, MaxPooling2D, ReLU and Softmax")
_LOSSES = ("the two cross-entropies on a softmax: CategoricalCrossentropy (loss='categorical_crossentropy', "
           "one-hot labels) and SparseCategoricalCrossentropy (loss='sparse_categorical_crossentropy', "
           "integer labels)")
_METRICS = ("the accuracies: CategoricalAccuracy (metrics=['accuracy']), SparseCategoricalAccuracy, "
            "TopKCategoricalAccuracy and SparseTopKCategoricalAccuracy; sklearn.metrics scores "
            "model.predict(x) for the others")
_INITIALIZERS = "glorot_uniform (the default), he_normal, he_uniform and zeros"

MISSING: dict[str, dict[str, str]] = {
    "minicnn": {
        "Model": "minicnn has no functional Model (keras.Model), nor Model subclassing: it builds "
                 "Sequential models; use minicnn.Sequential([...]), and subclass minicnn.layers.Layer "
                 "for a layer of your own",
        **_each("applications", "minicnn has no pretrained models (keras.applications): it trains "
                "Sequential models of its own layers from scratch; "
                "minicnn.experiments.published_model.mnist_cnn() builds the published MNIST CNN"),
        **_each("ops KerasTensor", "minicnn has no keras.{name}: there is no symbolic graph, layers compute "
                "on NumPy arrays with NumPy; a layer of your own subclasses minicnn.layers.Layer with "
                "its forward and backward passes in NumPy"),
        **_each("backend config", "minicnn has no keras.{name}: it always runs on NumPy and Numba, in "
                "float32, channels-last (N, H, W, C), and keeps no session to clear; the compute path is "
                "chosen with compile(implementation='fast' or 'reference') or minicnn.implementation.use"),
        "preprocessing": "minicnn has no preprocessing module (keras.preprocessing): it trains on NumPy "
                         "arrays; minicnn.datasets loads MNIST, Fashion-MNIST and CIFAR-10, and "
                         "minicnn.datasets.prepare_images scales uint8 images to float32 in [0, 1]",
        "constraints": "minicnn has no weight constraints (keras.constraints, kernel_constraint=): its "
                       "layers' weights are unconstrained",
        **_each("mixed_precision dtype_policies DTypePolicy quantizers", "minicnn has no keras.{name}: it "
                "trains in float32 (and checks gradients in float64)"),
        "random": "minicnn has no random module (keras.random): its draws come from NumPy generators; "
                  "minicnn.utils.set_random_seed(seed) seeds them all, or pass seed= to a layer or to fit",
        "distribution": "minicnn has no distribution module (keras.distribution): it trains on the CPU "
                        "with Numba's threads; the k-fold experiment runs folds side by side "
                        "(examples/mnist_kfold.py --jobs, or on a Dask cluster)",
        "export": "minicnn has no export module (keras.export, ExportArchive): "
                  "model.export('m.onnx', format='onnx') writes an ONNX file, model.save('m.npz') "
                  "minicnn's format, and minicnn.keras_compat.to_keras(model) builds the same network in "
                  "Keras, with its weights, to export from there",
        "Variable": "minicnn has no Variable (keras.Variable): weights are NumPy arrays, "
                    "layer.weights and get_weights()/set_weights()",
        "Initializer": "minicnn has no Initializer objects (keras.Initializer): layers take an "
                       f"initializer by name, kernel_initializer='he_normal'; minicnn.initializers has "
                       f"{_INITIALIZERS}",
        "wrappers": "minicnn has no scikit-learn wrappers (keras.wrappers): fit, evaluate and predict "
                    "take NumPy arrays, to use with sklearn.model_selection's splitters",
        "visualization": "minicnn has no keras.visualization: minicnn.viz draws filters, feature maps, "
                         "saliency and max-pool routing",
    },
    "minicnn.activations": _each(
        "elu gelu selu silu swish mish softplus softsign leaky_relu relu6 exponential hard_sigmoid "
        "hard_silu log_softmax", "minicnn has no {name} activation (keras.activations.{name}): its "
        "activations are relu, sigmoid, tanh, softmax and linear, and the LeakyReLU layer"),
    "minicnn.callbacks": {
        **_each("LambdaCallback", "minicnn has no LambdaCallback (keras.callbacks.LambdaCallback): "
                "subclass minicnn.callbacks.Callback and override the hooks you need"),
        **_each("BackupAndRestore", "minicnn has no BackupAndRestore (keras.callbacks.BackupAndRestore): "
                "callbacks.ModelCheckpoint saves the model with its optimizer state, and "
                "minicnn.load_model(path).fit(..., initial_epoch=...) goes on from there"),
        **_each("ProgbarLogger", "minicnn has no ProgbarLogger (keras.callbacks.ProgbarLogger): "
                "fit(verbose=1) shows a progress bar and a line per epoch itself"),
        **_each("RemoteMonitor SwapEMAWeights OrbaxCheckpoint", "minicnn has no {name} callback "
                "(keras.callbacks.{name}): it has Callback, History, EarlyStopping, ModelCheckpoint, "
                "ReduceLROnPlateau, LearningRateScheduler, CSVLogger, TensorBoard and TerminateOnNaN"),
    },
    "minicnn.datasets": _each(
        "cifar100 imdb reuters boston_housing california_housing", "minicnn has no {name} dataset "
        "(keras.datasets.{name}): it loads mnist, fashion_mnist and cifar10 "
        "(keras.datasets.<name>.load_data()), scikit-learn's 8x8 digits (load_digits) and any folder of "
        "IDX files (load_idx_dataset)"),
    "minicnn.initializers": {
        **{keras: f"minicnn has no initializer objects (keras.initializers.{keras}(seed=...)): layers "
                  f"take the name, kernel_initializer='{name}' (or '{keras}'); "
                  f"minicnn.initializers.{name}(shape, fan_in, fan_out, rng) draws the values"
           for keras, name in (("GlorotUniform", "glorot_uniform"), ("HeNormal", "he_normal"),
                               ("HeUniform", "he_uniform"), ("Zeros", "zeros"))},
        **_each("GlorotNormal glorot_normal LecunNormal lecun_normal LecunUniform lecun_uniform Orthogonal "
                "orthogonal RandomNormal random_normal RandomUniform random_uniform TruncatedNormal "
                "truncated_normal VarianceScaling variance_scaling Constant constant Ones ones Identity "
                "identity Initializer", "minicnn has no {name} initializer (keras.initializers.{name}): "
                f"its kernel initializers are {_INITIALIZERS}, chosen by name "
                "(kernel_initializer='he_normal')"),
    },
    "minicnn.layers": {
        **_each("InputLayer", "minicnn has no InputLayer (keras.layers.InputLayer): put "
                "minicnn.Input(shape=(H, W, C)) first in a Sequential model"),
        **_each("Add Subtract Multiply Average Maximum Minimum Concatenate Dot", "minicnn has no {name} "
                "layer (keras.layers.{name}): merging needs the functional API, and minicnn builds "
                "Sequential models only"),
        **_each("Rescaling Normalization Resizing CenterCrop RandomFlip RandomRotation RandomZoom "
                "RandomTranslation RandomCrop RandomContrast RandomBrightness", "minicnn has no "
                "preprocessing layers (keras.layers.{name}): prepare the arrays before fit, e.g. "
                "minicnn.datasets.prepare_images scales uint8 images to float32 in [0, 1]"),
        **_each("Conv1D Conv3D Conv1DTranspose Conv2DTranspose Conv3DTranspose DepthwiseConv2D "
                "SeparableConv1D SeparableConv2D MaxPooling1D MaxPool1D MaxPooling3D MaxPool3D "
                "AveragePooling1D AveragePooling3D GlobalMaxPooling2D GlobalMaxPool2D GlobalAveragePooling1D "
                "GlobalMaxPooling1D LayerNormalization GroupNormalization UnitNormalization Embedding "
                "Reshape Permute RepeatVector Lambda ZeroPadding2D Cropping2D UpSampling2D "
                "SpatialDropout2D GaussianNoise GaussianDropout AlphaDropout ELU PReLU Identity Masking "
                "LSTM GRU SimpleRNN RNN Bidirectional TimeDistributed ConvLSTM2D Attention "
                "MultiHeadAttention EinsumDense", "minicnn has no {name} layer (keras.layers.{name}): "
                f"its layers are {_LAYERS} (minicnn.layers)"),
    },
    "minicnn.losses": {
        **{name: f"minicnn has no loss function {name} (keras.losses.{name}): pass loss='{name}' to "
                 f"compile, or call minicnn.losses.{cls}()(y_true, y_pred) for the mean loss"
           for name, cls in (("categorical_crossentropy", "CategoricalCrossentropy"),
                             ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"))},
        **_each("BinaryCrossentropy binary_crossentropy BinaryFocalCrossentropy CategoricalFocalCrossentropy "
                "MeanSquaredError mean_squared_error MeanAbsoluteError mean_absolute_error "
                "MeanAbsolutePercentageError MeanSquaredLogarithmicError Huber huber LogCosh KLDivergence "
                "kl_divergence Poisson CosineSimilarity Hinge SquaredHinge CategoricalHinge Dice Tversky "
                "CTC", "minicnn has no {name} loss (keras.losses.{name}): it has " + _LOSSES),
    },
    "minicnn.metrics": {
        "Accuracy": "minicnn has no Accuracy metric (keras.metrics.Accuracy, which counts y_pred == "
                    "y_true exactly): metrics=['accuracy'] is minicnn.metrics.CategoricalAccuracy, the "
                    "highest score on the labelled class, as Keras resolves 'accuracy' for a classifier",
        **{name: f"minicnn has no metric function {name} (keras.metrics.{name}): pass "
                 f"metrics=['{name}'] to compile, or call minicnn.metrics.{cls}()(y_true, y_pred) for "
                 "the per-sample values"
           for name, cls in (("categorical_accuracy", "CategoricalAccuracy"),
                             ("sparse_categorical_accuracy", "SparseCategoricalAccuracy"),
                             ("top_k_categorical_accuracy", "TopKCategoricalAccuracy"),
                             ("sparse_top_k_categorical_accuracy", "SparseTopKCategoricalAccuracy"))},
        **_each("BinaryAccuracy AUC Precision Recall F1Score FBetaScore IoU MeanIoU BinaryIoU OneHotIoU "
                "OneHotMeanIoU TruePositives TrueNegatives FalsePositives FalseNegatives PrecisionAtRecall "
                "RecallAtPrecision SensitivityAtSpecificity SpecificityAtSensitivity Mean Sum "
                "MeanMetricWrapper MeanSquaredError RootMeanSquaredError MeanAbsoluteError R2Score "
                "BinaryCrossentropy CategoricalCrossentropy SparseCategoricalCrossentropy KLDivergence",
                "minicnn has no {name} metric (keras.metrics.{name}): it has " + _METRICS),
    },
    "minicnn.models": {
        "Model": "minicnn has no functional Model (keras.models.Model), nor Model subclassing: it builds "
                 "Sequential models; use minicnn.models.Sequential([...])",
        "clone_model": "minicnn has no clone_model (keras.models.clone_model): "
                       "minicnn.models.model_from_json(model.to_json()) builds a fresh model of the same "
                       "architecture, and set_weights(model.get_weights()) copies the weights",
    },
    "minicnn.optimizers": {
        **_each("AdamW Adagrad Adadelta Adafactor Adamax Nadam Ftrl Lamb Lion Muon LossScaleOptimizer",
                "minicnn has no {name} optimizer (keras.optimizers.{name}): it has SGD (momentum, "
                "nesterov), RMSprop and Adam"),
        "legacy": "minicnn has no legacy optimizers (keras.optimizers.legacy): its SGD, RMSprop and "
                  "Adam follow Keras 3",
    },
    "minicnn.regularizers": _each(
        "OrthogonalRegularizer orthogonal_regularizer", "minicnn has no {name} (keras.regularizers.{name}): "
        "its weight penalties are L2, L1 and L1L2 (kernel_regularizer='l2')"),
    "minicnn.schedules": _each(
        "PiecewiseConstantDecay PolynomialDecay InverseTimeDecay CosineDecayRestarts", "minicnn has no "
        "{name} schedule (keras.optimizers.schedules.{name}): it has ExponentialDecay and CosineDecay "
        "(with warm-up), and callbacks.LearningRateScheduler sets the rate from any function of the epoch"),
    "minicnn.utils": {
        **_each("plot_model model_to_dot", "minicnn draws no model graphs (keras.utils.{name}): "
                "model.summary() prints each layer with its output shape and parameter count"),
        **_each("PyDataset Sequence", "minicnn has no {name} (keras.utils.{name}): fit takes NumPy arrays, "
                "or a Python iterator or generator of (x, y) or (x, y, sample_weight) batches"),
        **_each("image_dataset_from_directory load_img img_to_array array_to_img save_img", "minicnn reads "
                "no image files (keras.utils.{name}): it trains on NumPy arrays (N, H, W, C), and "
                "minicnn.datasets.prepare_images turns uint8 images into float32 in [0, 1]"),
        **_each("text_dataset_from_directory audio_dataset_from_directory timeseries_dataset_from_array "
                "pad_sequences", "minicnn is for images: it has no {name} (keras.utils.{name})"),
        "get_file": "minicnn has no get_file (keras.utils.get_file): its datasets download and verify "
                    "their own files (minicnn.datasets), or read them from $MINICNN_DATA",
        "split_dataset": "minicnn has no split_dataset (keras.utils.split_dataset): fit(validation_split=) "
                         "holds out the last fraction, as Keras does, and "
                         "sklearn.model_selection.train_test_split splits arrays",
        **_each("register_keras_serializable custom_object_scope CustomObjectScope get_custom_objects "
                "serialize_keras_object deserialize_keras_object", "minicnn has no {name} "
                "(keras.utils.{name}): a layer class of your own is passed to "
                "minicnn.load_model(path, custom_objects={{'MyLayer': MyLayer}}), as in Keras"),
        "clear_session": "minicnn keeps no session or graph to clear (keras.utils.clear_session): "
                         "models share no state, and layer names are unique within each model",
        "Progbar": "minicnn has no Progbar (keras.utils.Progbar): fit(verbose=1) shows a progress bar "
                   "and a line per epoch itself",
        "normalize": "minicnn has no normalize (keras.utils.normalize): divide by "
                     "np.linalg.norm(x, axis=-1, keepdims=True)",
    },
}
"""Per namespace module, the Keras names it lacks and the message each raises."""
