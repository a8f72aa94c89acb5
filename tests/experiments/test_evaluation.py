"""Confusion matrix and report match scikit-learn; the plots are real PNGs drawn without a display."""

import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sklearn.metrics

from minicnn.experiments import evaluation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def pixels(path: Path) -> np.ndarray:
    from matplotlib.image import imread

    return imread(path)


@pytest.fixture
def predictions(rng):
    """300 labels in 0..9 and probabilities (300, 10) whose argmax is right about 70% of the time."""
    y_true = rng.integers(0, 10, 300)
    y_pred = np.where(rng.random(300) < 0.7, y_true, rng.integers(0, 10, 300))
    probabilities = rng.random((300, 10)) * 0.5
    probabilities[np.arange(300), y_pred] = 1.0
    return y_true, y_pred, probabilities / probabilities.sum(axis=1, keepdims=True)


def test_confusion_matrix_equals_sklearns_from_labels_or_probabilities(predictions):
    y_true, y_pred, probabilities = predictions
    expected = sklearn.metrics.confusion_matrix(y_true, y_pred)
    np.testing.assert_array_equal(evaluation.confusion_matrix(y_true, y_pred), expected)
    np.testing.assert_array_equal(evaluation.confusion_matrix(y_true, probabilities), expected)
    np.testing.assert_array_equal(evaluation.confusion_matrix(np.eye(10)[y_true], probabilities), expected)
    assert expected[3, 5] == np.sum((y_true == 3) & (y_pred == 5))


def test_confusion_matrix_keeps_classes_that_never_occur():
    cm = evaluation.confusion_matrix(np.array([0, 1, 1]), np.array([1, 1, 0]), num_classes=4)
    np.testing.assert_array_equal(cm, [[0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    probabilities = np.eye(5)[[0, 1, 1]]  # K from the scores' class axis
    assert evaluation.confusion_matrix(np.array([0, 1, 2]), probabilities).shape == (5, 5)


def test_labels_must_be_integers_or_scores():
    with pytest.raises(ValueError, match=r"y_true: expected integer labels \(N,\) or scores \(N, K\); "
                                         r"got float64 \(3,\)"):
        evaluation.confusion_matrix(np.array([0.0, 1.0, 2.0]), np.array([0, 1, 2]))


def test_labels_beyond_the_classes_are_an_error_not_dropped():
    with pytest.raises(ValueError, match=r"y_pred: labels must be in 0..2 for 3 classes; got 0..4"):
        evaluation.confusion_matrix(np.array([0, 1, 2]), np.array([0, 4, 2]), num_classes=3)
    with pytest.raises(ValueError, match=r"y_true: labels must be in 0..1 for 2 classes; got 0..2"):
        evaluation.classification_report(np.array([0, 1, 2]), np.array([0, 1, 1]), ["a", "b"])


def test_classification_report_equals_sklearns(predictions):
    y_true, y_pred, probabilities = predictions
    names = [f"digit {i}" for i in range(10)]
    report = evaluation.classification_report(y_true, probabilities, names)
    assert report == sklearn.metrics.classification_report(y_true, y_pred, target_names=names, digits=4)
    assert "digit 7" in report


def test_confusion_matrix_plot_is_a_png_with_the_counts_in_the_cells(tmp_path, predictions):
    y_true, y_pred, _ = predictions
    cm = evaluation.confusion_matrix(y_true, y_pred)
    path = tmp_path / "cm.png"
    fig = evaluation.plot_confusion_matrix(cm, path, title="Test set")
    width, height = png_size(path)
    assert 600 <= width <= 2000 and 500 <= height <= 2000
    assert pixels(path).std() > 0.05  # not a blank canvas
    heatmap = fig.axes[0]
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in heatmap.texts}
    assert cells == {(i, j): f"{cm[i, j]:,}" for i in range(10) for j in range(10)}
    assert (heatmap.get_xlabel(), heatmap.get_ylabel(), heatmap.get_title()) == (
        "Predicted label", "True label", "Test set")
    assert len(fig.axes) == 2  # the heatmap and its colorbar
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_learning_curves_draw_each_fold_and_the_mean(tmp_path):
    histories = [{"accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.6, 0.7, 0.75],
                  "loss": [1.0, 0.6, 0.4], "val_loss": [0.9, 0.7, 0.6]},
                 {"accuracy": [0.3, 0.5, 0.6], "val_accuracy": [0.4, 0.5, 0.55],
                  "loss": [1.2, 0.8, 0.6], "val_loss": [1.1, 0.9, 0.8]}]
    path = tmp_path / "curves.png"
    fig = evaluation.plot_learning_curves(histories, path)
    width, height = png_size(path)
    assert width > height >= 300
    accuracy, loss = fig.axes
    assert (accuracy.get_xlabel(), accuracy.get_ylabel()) == ("Epoch", "Accuracy")
    assert (loss.get_xlabel(), loss.get_ylabel()) == ("Epoch", "Loss")
    lines = {(tuple(line.get_ydata()), line.get_linestyle(), line.get_linewidth() > 2)
             for line in loss.lines}
    assert lines == {((1.0, 0.6, 0.4), "-", False), ((1.2, 0.8, 0.6), "-", False),
                     ((0.9, 0.7, 0.6), "--", False), ((1.1, 0.9, 0.8), "--", False),
                     ((1.1, 0.7, 0.5), "-", True), ((1.0, 0.8, 0.7), "--", True)}
    assert all(list(line.get_xdata()) == [1, 2, 3] for line in loss.lines)
    assert all(tick == int(tick) for tick in accuracy.get_xticks())
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert legend == ["fold 1", "fold 2", "mean over folds", "training", "validation"]


def test_learning_curves_without_validation_and_of_unequal_length(tmp_path):
    histories = [{"accuracy": [0.5, 0.7, 0.8], "loss": [1.0, 0.6, 0.4]},
                 {"accuracy": [0.3, 0.5], "loss": [1.2, 0.8]}]  # stopped early
    fig = evaluation.plot_learning_curves(histories, tmp_path / "curves.png")
    mean = [line for line in fig.axes[1].lines if line.get_linewidth() > 2]
    assert len(mean) == 1
    np.testing.assert_allclose(mean[0].get_ydata(), [1.1, 0.7])
    with pytest.raises(ValueError, match="histories is empty"):
        evaluation.plot_learning_curves([], tmp_path / "none.png")


def test_misclassified_grid_shows_the_wrong_ones_first_to_last(tmp_path, rng):
    images = rng.random((40, 28, 28, 1))
    y_true = np.arange(40) % 10
    y_pred = y_true.copy()
    wrong = [3, 11, 12, 30]
    y_pred[wrong] = (y_true[wrong] + 1) % 10
    path = tmp_path / "wrong.png"
    fig = evaluation.plot_misclassified(images, y_true, np.eye(10)[y_pred], path, max_images=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["true 3 / pred 4", "true 1 / pred 2", "true 2 / pred 3"]
    assert len(fig.axes) == 4  # a 2x2 grid for 3 images, the spare cell blank
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), images[3, ..., 0])
    assert fig.get_suptitle() == "Misclassified images: the first 3 of 4 (10.00% of 40 images)"
    width, height = png_size(path)
    assert 200 <= width <= 2000 and 200 <= height <= 2000
    assert pixels(path).std() > 0.05


def test_misclassified_grid_with_nothing_misclassified_says_so(tmp_path):
    y = np.array([1, 2, 3])
    path = tmp_path / "none.png"
    fig = evaluation.plot_misclassified(np.zeros((3, 8, 8)), y, y, path)
    assert not fig.axes
    assert "None: all 3 images are classified correctly" in fig.texts[0].get_text()
    width, height = png_size(path)
    assert width > height > 100
    assert pixels(path).std() > 0  # the text is drawn


@pytest.mark.parametrize(("call", "message"), [
    (lambda p: evaluation.plot_confusion_matrix(np.zeros((2, 3)), p), r"square \(K, K\); got shape \(2, 3\)"),
    (lambda p: evaluation.plot_confusion_matrix(np.zeros((2, 2)), p, ["a"]), "2 classes but 1 class_names"),
    (lambda p: evaluation.plot_misclassified(np.zeros((2, 4, 4)), [0, 1], [0, 1], p, max_images=0),
     "max_images must be an integer >= 1; got 0"),
    (lambda p: evaluation.plot_misclassified(np.zeros((3, 4, 4)), [0, 1], [0, 1], p),
     r"got \(3, 4, 4\), \(2,\) and \(2,\)"),
])
def test_plot_arguments_are_checked(tmp_path, call, message):
    with pytest.raises(ValueError, match=message):
        call(tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_plots_need_no_display_and_no_pyplot(tmp_path):
    """In a fresh process with no display and an interactive backend asked for, nothing touches pyplot."""
    script = (
        "import sys, minicnn, numpy as np\n"
        "from minicnn.experiments import evaluation\n"
        f"out = {str(tmp_path)!r}\n"
        "evaluation.plot_confusion_matrix(np.eye(3, dtype=int), out + '/cm.png')\n"
        "evaluation.plot_learning_curves([{'accuracy': [0.1, 0.2], 'loss': [2.0, 1.0]}], out + '/lc.png')\n"
        "evaluation.plot_misclassified(np.zeros((2, 4, 4)), [0, 1], [1, 1], out + '/mis.png')\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "TkAgg"
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    for name in ("cm.png", "lc.png", "mis.png"):
        assert png_size(tmp_path / name)[0] > 100


def test_importing_minicnn_does_not_import_matplotlib():
    script = "import sys, minicnn, minicnn.experiments.evaluation; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
