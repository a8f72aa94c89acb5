"""model.summary(): Keras' table, and the trainable and non-trainable counts."""

from conftest import published_model
from example_models import tiny_model

KERAS_SUMMARY = [
    ("conv2d (Conv2D)", "(None, 28, 28, 32)", "320"),
    ("max_pooling2d (MaxPooling2D)", "(None, 14, 14, 32)", "0"),
    ("dropout (Dropout)", "(None, 14, 14, 32)", "0"),
    ("conv2d_1 (Conv2D)", "(None, 14, 14, 64)", "18,496"),
    ("max_pooling2d_1 (MaxPooling2D)", "(None, 7, 7, 64)", "0"),
    ("dropout_1 (Dropout)", "(None, 7, 7, 64)", "0"),
    ("flatten (Flatten)", "(None, 3136)", "0"),
    ("dense (Dense)", "(None, 128)", "401,536"),
    ("dropout_2 (Dropout)", "(None, 128)", "0"),
    ("dense_1 (Dense)", "(None, 10)", "1,290"),
]


def test_summary_matches_keras():
    lines = []
    published_model().summary(print_fn=lines.append)
    text = lines[0]
    rows = [[cell.strip() for cell in line.split("│")[1:4]]
            for line in text.splitlines() if line.startswith("│")]
    assert rows == [list(r) for r in KERAS_SUMMARY]
    assert "Total params: 421,642 (1.61 MB)" in text
    assert "Trainable params: 421,642" in text
    assert published_model().count_params() == 421_642


def test_summary_counts_a_frozen_layers_parameters_as_non_trainable():
    model = tiny_model()
    model.layers[0].trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Trainable params: 112" in text and "Non-trainable params: 57" in text  # 27*4+4; 3*3*2*3+3
