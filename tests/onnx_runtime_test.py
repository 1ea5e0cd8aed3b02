#!/usr/bin/env python3
"""osprey export --onnx in ONNX Runtime: for simple_cnn and both MobileNetV2 stems, a tiny
Fashion-MNIST run is exported with --test-data 100 (100 test images after the eval pipeline and
the logits Osprey's InferenceNet, the one `osprey predict` runs, gives them). Each file must pass
Python's full onnx.checker and state its metadata; ONNX Runtime (tests/onnx_runtime/run_model.js,
CPU) must give the same logits within 1e-4 relative L2 and the same top-1 for every image.

usage: tests/onnx_runtime_test.py OSPREY_BINARY
Needs Debian's python3-onnx (with numpy) and tests/onnx_runtime/node_modules
(tools/install_deps.sh installs both)."""
import json
import os
import subprocess
import sys
import tempfile

DEBIAN_PYTHON = "/usr/bin/python3"
try:
    import numpy as np
    import onnx
    from onnx import numpy_helper
except ImportError:
    # A python3 earlier on PATH (pyenv, a venv) does not see Debian's python3-onnx.
    if sys.executable != DEBIAN_PYTHON and os.path.exists(DEBIAN_PYTHON):
        os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
    sys.exit("onnx_runtime_test: python3-onnx missing (bash tools/install_deps.sh)")

HERE = os.path.dirname(os.path.abspath(__file__))
RUNTIME = os.path.join(HERE, "onnx_runtime")
DATA = "/usr/share/datasets/fashion-mnist"
IMAGES = 100
TINY = ["--set", "limit_train=256", "--set", f"limit_test={IMAGES}", "--set", "epochs=1",
        "--set", "batch_size=32", "--set", "threads=2", "--set", "progress=false",
        "--set", "device=cpu", "--set", "plot=false", "--set", f"data_dir={DATA}"]
# (run name, settings, export flags)
MODELS = [
    ("simple_cnn", ["--set", "model=simple_cnn"], []),
    ("simple_cnn_softmax", ["--set", "model=simple_cnn"], ["--softmax"]),
    ("mobilenet_v2", ["--set", "model=mobilenet_v2", "--set", "width_mult=0.25",
                      "--set", "channels=3"], []),
    ("mobilenet_v2_cifar", ["--set", "model=mobilenet_v2_cifar", "--set", "width_mult=0.25"], []),
]


def run(cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout}{done.stderr}")
    return done.stdout


def check_metadata(model, name, softmax):
    meta = {p.key: p.value for p in model.metadata_props}
    for key in ("model", "osprey_version", "class_names", "input_chw", "eval_pipeline",
                "mean", "std", "output"):
        assert key in meta, f"{name}: metadata has no '{key}' ({sorted(meta)})"
    classes = json.loads(meta["class_names"])
    assert len(classes) == 10 and classes[0] == "T-shirt/top", f"{name}: class names {classes}"
    assert meta["output"] == ("probabilities" if softmax else "logits"), meta["output"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N", f"{name}: batch dimension {dims[0]}"
    assert [d.dim_value for d in dims[1:]] == json.loads(meta["input_chw"]), meta["input_chw"]
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops, f"{name}: BatchNormalization left in the graph"
    if name.startswith("mobilenet"):
        assert "Clip" in ops, f"{name}: no Clip for ReLU6"
    return meta


def check_model(osprey, tmp, name, settings, flags):
    run_dir = os.path.join(tmp, "runs", name.replace("_softmax", ""))
    if not os.path.exists(run_dir):
        run([osprey, "train", *TINY, *settings, "--set", f"runs_dir={tmp}/runs",
             "--set", f"name={os.path.basename(run_dir)}"])
    out_dir = os.path.join(tmp, name)
    os.makedirs(out_dir)
    path = os.path.join(out_dir, "model.onnx")
    print(run([osprey, "export", "--onnx", path, run_dir, "--test-data", str(IMAGES), *flags]),
          end="")
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path)
    check_metadata(model, name, "--softmax" in flags)

    def read(f):
        t = onnx.TensorProto()
        with open(os.path.join(out_dir, "test_data_set_0", f), "rb") as fh:
            t.ParseFromString(fh.read())
        return numpy_helper.to_array(t)

    x, want = read("input_0.pb"), read("output_0.pb")
    assert x.shape[0] == IMAGES and want.shape == (IMAGES, 10), (x.shape, want.shape)
    x.astype(np.float32).tofile(os.path.join(tmp, "x.f32"))
    info = json.loads(run(["node", os.path.join(RUNTIME, "run_model.js"), path,
                           os.path.join(tmp, "x.f32"), *map(str, x.shape),
                           os.path.join(tmp, "y.f32")]))
    got = np.fromfile(os.path.join(tmp, "y.f32"), dtype=np.float32).reshape(want.shape)
    rel = float(np.linalg.norm(got.astype(np.float64) - want) / np.linalg.norm(want))
    same = int((got.argmax(1) == want.argmax(1)).sum())
    print(f"{name}: input {list(x.shape)}, {len(model.graph.node)} nodes; ONNX Runtime "
          f"{info['ort']} vs Osprey: relative L2 {rel:.2e}, top-1 agrees on {same}/{IMAGES}, "
          f"batch of 1 vs batch of {IMAGES}: max |diff| {info['batch1_max_abs_diff']:.1e}")
    assert rel < 1e-4, f"{name}: relative L2 {rel} >= 1e-4"
    assert same == IMAGES, f"{name}: top-1 differs on {IMAGES - same} images"
    assert info["batch1_max_abs_diff"] < 1e-4 * max(1.0, float(np.abs(want).max()))


def check_refusal(osprey, tmp):
    """More test images than the run has: one message, exit 1, and no model file either."""
    path = os.path.join(tmp, "refused.onnx")
    done = subprocess.run([osprey, "export", "--onnx", path, os.path.join(tmp, "runs", "simple_cnn"),
                           "--test-data", str(IMAGES + 1)], capture_output=True, text=True)
    assert done.returncode == 1, done
    assert f"the test set has only {IMAGES} images" in done.stderr, done.stderr
    assert not os.path.exists(path), "a refused export left a file"


def main():
    osprey = os.path.abspath(sys.argv[1])
    if not os.path.isdir(os.path.join(RUNTIME, "node_modules", "onnxruntime-node")):
        sys.exit("onnx_runtime_test: onnxruntime-node missing (bash tools/install_deps.sh)")
    if not os.path.isdir(DATA):
        sys.exit(f"onnx_runtime_test: {DATA} missing (apt-get install dataset-fashion-mnist)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, settings, flags in MODELS:
            check_model(osprey, tmp, name, settings, flags)
        check_refusal(osprey, tmp)
    print("onnx_runtime_test: PASS")


if __name__ == "__main__":
    main()
