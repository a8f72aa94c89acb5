"""minicnn.viz: every plot is a valid PNG, and the numbers behind it are right."""

import copy
import re
import subprocess
import sys

import numpy as np
import pytest

from minicnn import Conv2D, Dense, Dropout, Flatten, Input, MaxPool2D, Sequential, to_categorical, trace, viz

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, fig):
    """``path`` is a PNG that decodes to the figure's size in pixels."""
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width = imread(path).shape[:2]
    expected_width, expected_height = fig.get_size_inches() * fig.dpi
    assert (width, height) == (round(expected_width), round(expected_height))


def tiny_model(dtype=np.float64) -> Sequential:
    """Conv(relu) -> pool -> dropout -> flatten -> softmax, small enough for finite differences."""
    return Sequential([
        Input((6, 6, 1)),
        Conv2D(3, 3, padding="same", activation="relu", seed=0),
        MaxPool2D(2),
        Dropout(0.5, seed=1),
        Flatten(),
        Dense(4, activation="softmax", seed=2),
    ]).astype(dtype)


def image_panels(fig):
    """The axes that show an image, in drawing order (subfigures included)."""
    return [ax for ax in fig.get_axes() if ax.images]


# --------------------------------------------------------------------------- filters


def test_plot_filters_draws_each_filter_of_the_first_conv(tmp_path):
    model = tiny_model()
    path = tmp_path / "filters.png"
    fig = viz.plot_filters(model, path)
    assert_png(path, fig)
    kernel = model.layers[0].params["kernel"]
    panels = image_panels(fig)
    assert len(panels) == kernel.shape[-1] == 3
    for f, ax in enumerate(panels):
        np.testing.assert_array_equal(ax.images[0].get_array(), kernel[:, :, 0, f])
        assert ax.images[0].get_clim() == pytest.approx((-np.abs(kernel).max(), np.abs(kernel).max()))


def test_plot_filters_puts_the_input_channels_of_a_filter_side_by_side(tmp_path):
    conv = Conv2D(2, (2, 3), seed=0)
    conv.build((5, 5, 2))
    fig = viz.plot_filters(conv, tmp_path / "filters.png")
    panel = image_panels(fig)[1].images[0].get_array()
    kernel = conv.params["kernel"][..., 1]
    assert panel.shape == (2, 3 + 1 + 3)
    np.testing.assert_array_equal(panel[:, :3], kernel[..., 0])
    assert np.ma.getmaskarray(panel)[:, 3].all()  # a blank (NaN) column between the channels
    np.testing.assert_array_equal(panel[:, 4:], kernel[..., 1])


def test_plot_filters_rejects_a_model_without_convolution(tmp_path):
    model = Sequential([Input((4,)), Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="no Conv2D"):
        viz.plot_filters(model, tmp_path / "filters.png")
    with pytest.raises(TypeError, match="Sequential model or a Conv2D layer"):
        viz.plot_filters(Dense(3), tmp_path / "filters.png")
    assert not (tmp_path / "filters.png").exists()


# --------------------------------------------------------------------------- feature maps


def test_feature_maps_are_each_layers_inference_output(rng):
    model = tiny_model()
    image = rng.random((6, 6, 1))
    maps = viz.feature_maps(model, image)
    titles = [title for title, _ in maps]
    assert titles[0] == "input"
    assert titles[1].startswith("conv2d (Conv2D, relu)")
    # Dropout (identity at inference) and Flatten (a reshape) are named, not drawn again.
    assert "dropout" in titles[2] and "flatten" in titles[2] and titles[2].startswith("max_pooling2d")
    assert titles[3].startswith("dense (Dense, softmax)")
    conv, pool, _, _, dense = model.layers
    a = np.maximum(_correlate(image, conv.params["kernel"]) + conv.params["bias"], 0)
    np.testing.assert_allclose(maps[1][1][0], a, rtol=1e-12)
    pooled = a.reshape(3, 2, 3, 2, 3).max(axis=(1, 3))
    np.testing.assert_allclose(maps[2][1][0], pooled, rtol=1e-12)
    np.testing.assert_allclose(maps[3][1], model.predict(image[None]), rtol=1e-12)


def _correlate(image, kernel):
    """'same' 3x3 stride-1 cross-correlation of one (H, W, C) image, written out plainly."""
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    h, w, _ = image.shape
    return np.array([[np.tensordot(padded[i:i + 3, j:j + 3], kernel, axes=3) for j in range(w)]
                     for i in range(h)])


def test_plot_feature_maps_draws_the_first_channels_of_every_image_layer(tmp_path, rng):
    model = tiny_model()
    path = tmp_path / "maps.png"
    fig = viz.plot_feature_maps(model, rng.random((1, 6, 6, 1)), path, max_maps=2)
    assert_png(path, fig)
    # input: 1 channel; conv2d and max_pooling2d: 3 channels each, of which max_maps = 2 are drawn
    assert len(image_panels(fig)) == 1 + 2 + 2
    bars = [ax for ax in fig.get_axes() if ax.patches]
    probs = [patch.get_height() for patch in bars[-1].patches]
    assert len(probs) == 4 and sum(probs) == pytest.approx(1.0)


def test_plots_of_a_model_want_it_built(tmp_path, rng):
    model = Sequential([Conv2D(2, 3), Flatten(), Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="not built yet"):
        viz.plot_feature_maps(model, rng.random((6, 6, 1)), tmp_path / "maps.png")
    with pytest.raises(ValueError, match="not built yet"):
        viz.plot_filters(model, tmp_path / "filters.png")


def test_plot_feature_maps_wants_one_image(tmp_path, rng):
    with pytest.raises(ValueError, match="one image"):
        viz.plot_feature_maps(tiny_model(), rng.random((2, 6, 6, 1)), tmp_path / "maps.png")
    with pytest.raises(ValueError, match=r"expected image of shape \(None, 6, 6, 1\)"):
        viz.plot_feature_maps(tiny_model(), rng.random((6, 6)), tmp_path / "maps.png")


# --------------------------------------------------------------------------- saliency


def test_saliency_is_each_images_loss_gradient_with_dropout_off(implementation, rng):
    """|dL_n/dx_n| against central differences of -log p[y] from ``predict`` (inference)."""
    model = tiny_model()
    x, y = rng.random((3, 6, 6, 1)), np.array([0, 3, 1])
    sal = viz.saliency(model, x, y)
    assert sal.shape == x.shape
    eps = 1e-6

    def loss(n, xn):
        return -np.log(model.predict(xn[None])[0, y[n]])

    numeric = np.zeros_like(x)
    for n in range(len(x)):
        for index in np.ndindex(x.shape[1:]):
            plus, minus = x[n].copy(), x[n].copy()
            plus[index] += eps
            minus[index] -= eps
            numeric[(n, *index)] = (loss(n, plus) - loss(n, minus)) / (2 * eps)
    np.testing.assert_allclose(sal, np.abs(numeric), rtol=1e-5, atol=1e-9)
    assert all(not layer.grads for layer in model.layers)  # the model itself was not touched


def test_plot_saliency_shows_each_map_scaled_to_its_maximum(tmp_path, rng):
    model = tiny_model()
    x, y = rng.random((2, 6, 6, 1)), np.eye(4)[[2, 1]]
    path = tmp_path / "saliency.png"
    fig = viz.plot_saliency(model, x, y, path)
    assert_png(path, fig)
    panels = image_panels(fig)
    assert len(panels) == 4  # row 1: the two images; row 2: their maps
    sal = viz.saliency(model, x, y)[..., 0]
    for n in range(2):
        np.testing.assert_allclose(panels[2 + n].images[0].get_array(), sal[n] / sal[n].max())


def test_saliency_rejects_mismatched_labels(rng):
    with pytest.raises(ValueError, match="x has 3 images but y has 2 labels"):
        viz.saliency(tiny_model(), rng.random((3, 6, 6, 1)), np.array([0, 1]))


# --------------------------------------------------------------------------- gradient norms


def test_gradient_norms_are_the_norms_of_the_last_steps_gradients(rng):
    """A softmax Dense layer alone: dW = x.T @ (p - y) / N and db = sum(p - y) / N, by hand."""
    model = Sequential([Input((5,)), Dense(3, activation="softmax", seed=0)]).astype(np.float64)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(RuntimeError, match="after a training step"):
        viz.gradient_norms(model)
    x, y = rng.random((4, 5)), np.array([0, 2, 2, 1])
    p = model.predict(x)
    dz = (p - np.eye(3)[y]) / 4
    model.train_on_batch(x, y)
    norms = viz.gradient_norms(model)
    assert norms == pytest.approx({"dense/kernel": np.linalg.norm(x.T @ dz),
                                   "dense/bias": np.linalg.norm(dz.sum(axis=0))}, rel=1e-12)


def test_plot_gradient_norms_draws_one_line_per_parameter(tmp_path):
    records = [{"conv2d/kernel": 1.0 / step, "conv2d/bias": 0.1, "dense/kernel": 2.0 ** step}
               for step in range(1, 6)]
    path = tmp_path / "norms.png"
    fig = viz.plot_gradient_norms(records, path)
    assert_png(path, fig)
    (ax,) = fig.get_axes()
    assert ax.get_yscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == set(records[0])
    np.testing.assert_array_equal(lines["dense/kernel"].get_xdata(), [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(lines["dense/kernel"].get_ydata(), [2, 4, 8, 16, 32])
    assert lines["conv2d/bias"].get_linestyle() == "--"
    assert lines["conv2d/kernel"].get_color() == lines["conv2d/bias"].get_color()
    assert lines["conv2d/kernel"].get_color() != lines["dense/kernel"].get_color()


def test_plot_gradient_norms_rejects_records_that_disagree(tmp_path):
    with pytest.raises(ValueError, match="record 1 names"):
        viz.plot_gradient_norms([{"a/kernel": 1.0}, {"b/kernel": 1.0}], tmp_path / "norms.png")


# --------------------------------------------------------------------------- max-pool routing


def _route_by_hand(x, dout, pool, stride):
    """Each dout entry added at the first (row-major) maximum of its window: np.argmax's choice."""
    dx = np.zeros_like(x)
    for i, j in np.ndindex(dout.shape):
        window = x[i * stride:i * stride + pool, j * stride:j * stride + pool]
        di, dj = np.unravel_index(np.argmax(window), window.shape)
        dx[i * stride + di, j * stride + dj] += dout[i, j]
    return dx


@pytest.mark.parametrize(("shape", "pool", "stride"), [((4, 4), 2, None), ((6, 5), 3, 1), ((7, 7), 2, 3)])
def test_maxpool_routing_sends_each_gradient_to_its_windows_maximum(rng, shape, pool, stride):
    x = rng.random(shape)
    s = pool if stride is None else stride
    oh, ow = (shape[0] - pool) // s + 1, (shape[1] - pool) // s + 1
    dout = rng.random((oh, ow)) + 0.5
    out, _, dx = viz.maxpool_routing(x, dout, pool, stride)
    np.testing.assert_array_equal(dx, _route_by_hand(x, dout, pool, s))
    assert dx.sum() == pytest.approx(dout.sum())
    assert out[0, 0] == x[:pool, :pool].max()


def test_default_routing_example_breaks_its_tie_towards_the_first_maximum():
    out, argmax, dx = viz.maxpool_routing()
    np.testing.assert_array_equal(out, [[4, 5], [6, 7]])
    assert argmax[1, 1] == 0  # the 7 at (2, 2), not the equal 7 at (2, 3)
    np.testing.assert_array_equal(dx, [[0, 0, 0, 0], [0.1, 0, 0, 0.2], [0, 0.3, 0.4, 0], [0, 0, 0, 0]])


def test_plot_maxpool_routing_shows_dx_where_the_gradient_lands(tmp_path):
    path = tmp_path / "routing.png"
    fig = viz.plot_maxpool_routing(path)
    assert_png(path, fig)
    ax_x, ax_out, ax_dout, ax_dx = fig.get_axes()
    shown = np.zeros((4, 4))
    for text in ax_dx.texts:
        q, r = text.get_position()
        shown[int(r), int(q)] = float(text.get_text())
    np.testing.assert_array_equal(shown, _route_by_hand(viz.ROUTING_X, viz.ROUTING_DOUT, 2, 2))
    assert "tie in window (1, 1)" in ax_x.get_xlabel()


# --------------------------------------------------------------------------- confused pairs


CM = np.array([[5, 3, 0, 1],
               [0, 4, 7, 0],
               [2, 0, 6, 3],
               [0, 0, 3, 2]])


def labels_from(cm):
    """(y_true, y_pred) with exactly the counts of ``cm``."""
    pairs = [(i, j) for (i, j), count in np.ndenumerate(cm) for _ in range(count)]
    return np.array([i for i, _ in pairs]), np.array([j for _, j in pairs])


def test_confused_pairs_are_the_largest_off_diagonal_counts():
    y_true, y_pred = labels_from(CM)
    assert viz.confused_pairs(y_true, y_pred, top=4) == [(1, 2, 7), (0, 1, 3), (2, 3, 3), (3, 2, 3)]
    assert viz.confused_pairs(y_true, y_pred, top=10) == [
        (1, 2, 7), (0, 1, 3), (2, 3, 3), (3, 2, 3), (2, 0, 2), (0, 3, 1)]
    assert viz.confused_pairs(y_true, y_true) == []


def test_plot_confused_pairs_shows_images_of_each_pair(tmp_path, rng):
    y_true, y_pred = labels_from(CM)
    order = rng.permutation(len(y_true))
    y_true, y_pred = y_true[order], y_pred[order]
    x = np.broadcast_to(np.arange(len(y_true), dtype=float)[:, None, None], (len(y_true), 5, 5)).copy()
    probs = np.full((len(y_true), 4), 0.1)
    probs[np.arange(len(y_true)), y_pred] = 0.7
    path = tmp_path / "pairs.png"
    fig = viz.plot_confused_pairs(x, y_true, probs, path, top=2, examples=4)
    assert_png(path, fig)
    titles = [sub._suptitle.get_text() for sub in fig.subfigs]
    assert titles == ["true 1 → predicted 2: 7 images", "true 0 → predicted 1: 3 images"]
    panels = image_panels(fig)
    assert len(panels) == 4 + 3  # 4 of the 7 (1 -> 2) images, all 3 (0 -> 1) images
    shown = [int(ax.images[0].get_array()[0, 0]) for ax in panels]  # each image is filled with its index
    assert all((y_true[n], y_pred[n]) == (1, 2) for n in shown[:4])
    assert all((y_true[n], y_pred[n]) == (0, 1) for n in shown[4:])
    assert panels[0].get_title() == "p(2) = 0.70"


def test_plot_confused_pairs_with_no_errors_says_so(tmp_path):
    fig = viz.plot_confused_pairs(np.zeros((3, 4, 4)), [0, 1, 1], [0, 1, 1], tmp_path / "pairs.png")
    assert "None: all 3 images are classified correctly" in fig.texts[0].get_text()


# --------------------------------------------------------------------------- no global state


def test_import_stays_light_and_plots_never_touch_pyplot(tmp_path):
    code = (
        "import sys\n"
        "import minicnn, minicnn.viz\n"
        "assert 'matplotlib' not in sys.modules, 'import minicnn.viz loaded matplotlib'\n"
        f"minicnn.viz.plot_maxpool_routing({str(tmp_path / 'r.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'a plot used pyplot'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- one step as a graph


def node_texts(fig) -> dict[str, object]:
    """The graph's node text artists by node name (``"input"``, ``"dense"``, ``"loss"``)."""
    return {t.get_gid().removeprefix("node:"): t for t in fig.axes[0].texts
            if (t.get_gid() or "").startswith("node:")}


def shown(text: str, label: str) -> float:
    """The number the node text shows after ``label`` (as ``‖dL/d out‖ 1.234e-01``)."""
    return float(re.search(re.escape(label) + r" ([-+\d.e]+)", text).group(1))


def test_plot_step_graph_shows_each_steps_output_and_gradient_norms(tmp_path, implementation, rng):
    """Each node: the norm of dL/d(its output) as trace_step measures it, and its parameters' gradient
    norms and the input's dL/dx as a real training step computes them (same dropout masks)."""
    model = tiny_model(np.float32)
    x, y = rng.random((3, 6, 6, 1), dtype=np.float32), np.array([0, 3, 1])
    path = tmp_path / "step.png"
    fig = viz.plot_step_graph(model, x, y, path)
    assert_png(path, fig)
    nodes = node_texts(fig)
    step = trace.trace_step(model, x, y)
    assert list(nodes) == ["input", *(s.name for s in step.steps), "loss"]
    real = copy.deepcopy(model)
    loss, _, dx = real.compute_loss_and_gradients(x, to_categorical(y, 4))
    assert shown(nodes["input"].get_text(), "‖dL/dx‖") == pytest.approx(np.linalg.norm(dx), rel=1e-3)
    assert shown(nodes["loss"].get_text(), "loss") == pytest.approx(loss, abs=1e-4)
    for record in step.steps:
        text = nodes[record.name].get_text()
        assert shown(text, "‖dL/d out‖") == pytest.approx(record.gradient.norm, rel=1e-3)
        assert str(record.output.shape) in text
    for name, norm in viz.gradient_norms(real).items():
        owner = next(s.name for s in step.steps if name.split("/")[0] in s.layer_names)
        assert shown(nodes[owner].get_text(), f"‖dL/d {name}‖") == pytest.approx(norm, rel=1e-3)
    assert "logits z (before softmax)" in nodes[step.steps[-1].name].get_text()


def test_plot_step_graph_flags_a_vanishing_gradient_in_its_colour(tmp_path, rng):
    from matplotlib import colormaps

    flagged = colormaps[viz.STEP_GRAPH_COLORMAP](0.0)  # the deepest blue: shrunk beyond GRADIENT_GROWTH
    sigmoids = Sequential([Input((8,)), *(Dense(8, activation="sigmoid", seed=i) for i in range(6)),
                           Dense(3, activation="softmax", seed=9)])
    x, y = rng.random((8, 8), dtype=np.float32), rng.integers(0, 3, 8)
    nodes = node_texts(viz.plot_step_graph(sigmoids, x, y, tmp_path / "vanishing.png"))
    colour = {name: tuple(text.get_bbox_patch().get_facecolor()) for name, text in nodes.items()}
    assert np.allclose(colour["input"], flagged) and "VANISHING" in nodes["input"].get_text()
    assert not np.allclose(colour["dense_6"], flagged) and "VANISHING" not in nodes["dense_6"].get_text()

    x = rng.random((3, 6, 6, 1), dtype=np.float32)
    healthy = node_texts(viz.plot_step_graph(tiny_model(np.float32), x, [0, 1, 2], tmp_path / "healthy.png"))
    assert not any(np.allclose(t.get_bbox_patch().get_facecolor(), flagged) for t in healthy.values())
    assert not any("VANISHING" in t.get_text() or "EXPLODING" in t.get_text() for t in healthy.values())
