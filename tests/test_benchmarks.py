"""Helpers of benchmarks/machine.py, bench_speed.py and profile_layers.py that compute reported figures."""

import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14
stepping\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw

processor\t: 1
vendor_id\t: OtherVendor
cpu family\t: 6
"""


def load(name: str):
    sys.path.insert(0, str(BENCHMARKS))  # profile_layers imports machine from beside it
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_cpu_info_reads_the_first_processor():
    cpu = load("machine").cpu_info(CPUINFO)
    assert (cpu["model_name"], cpu["vendor"], cpu["family"], cpu["model"], cpu["stepping"]) == (
        "AMD EPYC 9R14", "AuthenticAMD", 25, 17, 1)
    assert cpu["simd"] == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw"]
    assert "fpu" in cpu["flags"]


def test_describe_cpu_names_family_model_and_simd():
    machine = load("machine")
    line = machine.describe_cpu(machine.cpu_info(CPUINFO))
    assert line == "AMD EPYC 9R14 (family 25, model 17; sse4_2, avx, avx2, fma, avx512f, avx512bw)"


def test_parallel_efficiency_relative_to_one_thread():
    bench = load("bench_speed")
    row = lambda train, predict: {"train_images_per_s": train, "predict_images_per_s": predict}  # noqa: E731
    by_threads = {1: {"minicnn": row(100.0, 400.0)}, 2: {"minicnn": row(150.0, 800.0)}}
    assert bench.parallel_efficiency(by_threads) == {"minicnn": {2: {"train": 0.75, "predict": 1.0}}}
    assert bench.parallel_efficiency({2: by_threads[2]}) == {}


@pytest.mark.parametrize("bad", [["--threads", "0"], ["--threads", "2", "2"], ["--background-load", "-1"],
                                 ["--background-load", "1", "1"]])
def test_bad_benchmark_arguments_are_refused(bad):
    with pytest.raises(SystemExit):
        load("bench_speed").parse_args(bad)


def test_flops_of_a_pooled_convolution_without_input_gradient():
    profile = load("profile_layers")
    from minicnn.layers import Conv2D

    conv = Conv2D(64, 3, padding="same", activation="relu")
    conv.build((14, 14, 32))
    block = type("Block", (), {"conv": conv, "input_gradient": False})()
    forward, backward = profile.flops(block, (128, 14, 14, 32))
    assert forward == 2 * 128 * 14 * 14 * 3 * 3 * 32 * 64
    assert backward == forward  # dW only
    assert profile.flops(conv, (128, 14, 14, 32))[1] == 2 * forward


def test_nbytes_counts_a_reshaped_view_once():
    profile = load("profile_layers")
    a = np.zeros((4, 8), dtype=np.float32)
    b = np.ones(3, dtype=np.float64)
    assert profile.nbytes(a, {"view": a.reshape(-1), "other": [b, None]}) == a.nbytes + b.nbytes


def test_predict_time_leaves_out_the_first_call_and_takes_the_median():
    """Keras traces its predict function on the first call: that call must not count."""
    bench = load("bench_speed")
    durations = iter([0.3] + [0.01, 0.5, 0.01, 0.02, 0.01][:bench.PREDICT_REPEATS])
    calls = []

    def predict():
        calls.append(1)
        bench.time.sleep(next(durations))

    timings = bench.time_predict(predict)
    assert len(calls) == bench.PREDICT_REPEATS + 1
    assert 0.01 <= timings["predict_seconds"] < 0.1
    assert len(timings["predict_seconds_all"]) == len(timings["predict_cpu_seconds"]) == bench.PREDICT_REPEATS
    assert max(timings["predict_cpu_seconds"]) < 0.1  # sleeping costs no CPU: wall and CPU time are apart


def test_summary_gives_each_frameworks_fastest_epoch_and_call_and_the_cores_it_kept_busy():
    bench = load("bench_speed")
    run = lambda epochs, cpu, predict, predict_cpu: {  # noqa: E731
        "train_images": 100, "test_images": 50, "data": "random", "peak_rss_mb": 1.0,
        "epoch_seconds": epochs, "epoch_cpu_seconds": cpu, "predict_seconds": sorted(predict)[1],
        "predict_seconds_all": predict, "predict_cpu_seconds": predict_cpu}
    runs = [run([9.0, 1.0, 2.0], [9.0, 2.0, 2.0], [0.5, 1.0, 0.5], [1.0, 1.0, 1.0]),  # first epoch: warm-up
            run([9.0, 2.0, 2.0], [9.0, 4.0, 4.0], [0.25, 1.0, 1.0], [0.5, 1.0, 1.0])]
    s = bench.summarize(runs)
    assert s["train_images_per_s_fastest"] == 100.0  # the 1-second epoch, not the 9-second warm-up
    assert s["predict_images_per_s_fastest"] == 200.0
    assert s["train_cores"] == pytest.approx((4 / 3 + 2.0) / 2)  # steady epochs only, median of runs
    assert s["predict_cores"] == pytest.approx((3.0 / 2.0 + 2.5 / 2.25) / 2)
    fast = {"train_images_per_s_fastest": 300.0, "predict_images_per_s_fastest": 100.0}
    slow = {"train_images_per_s_fastest": 100.0, "predict_images_per_s_fastest": 200.0}
    assert bench.keras_ratios({"minicnn": fast, "keras": slow}, fastest=True) == (3.0, 0.5)


def test_runs_with_other_settings_write_to_other_files():
    bench = load("bench_speed")
    stems = [bench.result_stem([2], [0]), bench.result_stem([2], [1]), bench.result_stem([1, 2], [0]),
             bench.result_stem([1, 2], [3]), bench.result_stem([2], [0, 1])]
    assert stems == ["speed", "speed_background_load_1", "speed_threads_1_2",
                     "speed_threads_1_2_background_load_3", "speed_background_load_0_1"]


def test_loaded_ratio_to_keras_is_set_against_the_quiet_ratio_of_the_same_run():
    bench = load("bench_speed")
    row = lambda train, predict: {"train_images_per_s": train, "predict_images_per_s": predict}  # noqa: E731
    quiet = {"minicnn": row(200.0, 400.0), "keras": row(100.0, 200.0)}  # 2x and 2x
    loaded = {"minicnn": row(100.0, 300.0), "keras": row(80.0, 100.0)}  # 1.25x and 3x
    over = bench.loaded_over_quiet({0: {2: quiet}, 1: {2: loaded}})
    assert over == {1: {2: {"train": 0.625, "predict": 1.5}}}
    assert bench.loaded_over_quiet({1: {2: loaded}}) == {}


def zoo_parameter_counts(framework: str) -> dict[str, int]:
    """Each zoo model's parameter count in ``framework``, BatchNormalization's moving statistics included."""
    zoo = load("bench_zoo")
    if framework == "torch":
        counts = {}
        for name, spec in zoo.ZOO.items():
            model = zoo.torch_model(spec)
            moving = sum(b.numel() for key, b in model.named_buffers() if key.endswith(("mean", "var")))
            counts[name] = sum(p.numel() for p in model.parameters()) + moving
        return counts
    module = importlib.import_module(framework)
    return {name: zoo.keras_style_model(module, spec).count_params() for name, spec in zoo.ZOO.items()}


def test_zoo_models_are_the_same_in_pytorch():
    """The zoo is written once as Keras calls; a wrong translation to torch.nn changes some model's size."""
    pytest.importorskip("torch", reason="PyTorch is the bench extra: pip install -e '.[bench]'")
    assert zoo_parameter_counts("torch") == zoo_parameter_counts("minicnn")


def test_zoo_models_are_the_same_in_keras():
    pytest.importorskip("tensorflow", reason="the keras extra: pip install -e '.[keras]'")
    assert zoo_parameter_counts("keras") == zoo_parameter_counts("minicnn")


def test_zoo_ratios_are_minicnns_figure_over_the_others():
    zoo = load("bench_zoo")
    row = lambda train, predict: {"train": train, "predict": predict}  # noqa: E731
    summary = {"minicnn": row(300.0, 100.0), "keras": row(100.0, 200.0)}
    assert (zoo.ratio(summary, "keras", "train"), zoo.ratio(summary, "keras", "predict")) == (3.0, 0.5)
    assert zoo.ratio(summary, "torch", "train") is None  # not measured: no ratio, not a crash


def test_cold_start_reports_the_median_and_the_smallest_of_each_kind():
    cold_start = load("cold_start")
    run = lambda overhead: {"overhead_s": overhead, "compiled": 30}  # noqa: E731
    summary = cold_start.summarize({"cold": [run(20.0), run(15.0), run(16.0)], "warm": [run(1.0)]})
    assert summary == {"cold": {"overhead_s_median": 16.0, "overhead_s_min": 15.0, "compiled_median": 30,
                                "compiled_min": 30},
                       "warm": {"overhead_s_median": 1.0, "overhead_s_min": 1.0, "compiled_median": 30,
                                "compiled_min": 30}}


def test_cold_start_takes_another_checkout_by_name_and_refuses_a_folder_without_minicnn(tmp_path, capsys):
    cold_start, checkout = load("cold_start"), BENCHMARKS.parent
    assert cold_start.parse_args(["--tree", f"before={checkout}"]).tree == [("before", checkout)]
    with pytest.raises(SystemExit):
        cold_start.parse_args(["--tree", f"before={tmp_path}"])
    assert "expected NAME=DIR with DIR a minicnn checkout" in capsys.readouterr().err


@pytest.mark.parametrize("bad", [["--repeats", "0"], ["--images", "0"], ["--batch-size", "0"]])
def test_cold_start_rejects_bad_flags(bad, capsys):
    with pytest.raises(SystemExit):
        load("cold_start").parse_args(bad)
    assert f"{bad[0]} must be at least 1; got 0" in capsys.readouterr().err
