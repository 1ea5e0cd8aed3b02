#!/usr/bin/env python3
"""A PyTorch .pth (tests/golden/pth, written by python3-torch 1.13) in every command that takes
a checkpoint, with no PyTorch installed (CTest pth_commands; loopback only, ~15 s):

1. `osprey convert` writes its safetensors; eval, predict and serve, each given the .pth and then
   the conversion with the training config (--config), print and answer exactly the same.
2. serve's /api/model names the .pth and the config's classes; export writes it as ONNX.
3. verify takes a .pth for the weights (--params) and passes against PyTorch's reference.
4. Without --config, a .pth is refused with the flag named; a pickle whose __reduce__ calls
   os.system is refused naming the file, and the file it would have made does not appear.

usage: pth_commands_test.py OSPREY_BINARY SOURCE_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

from osprey_test_support import check, fashion_png, request, wait_for_url

MARKER = "/tmp/osprey_pth_reduce_ran"  # tests/golden/make_pth.py: what the hostile pickle touches


def run(args, want_rc=0):
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    check(p.returncode == want_rc,
          "%s: exit %d, wanted %d\n%s%s" % (" ".join(args), p.returncode, want_rc, p.stdout, p.stderr))
    return p.stdout + p.stderr


def served(osprey, model_args, image, tmp):
    log_path = os.path.join(tmp, "serve.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([osprey, "serve", "--port", "0"] + model_args, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        port = wait_for_url(proc, log_path)
        status, _, body = request(port, "POST", "/api/predict", image, {"Content-Type": "image/png"})
        check(status == 200, "serve: %d %r" % (status, body))
        answer = json.loads(body)
        del answer["model_ms"]  # a time
        return answer, json.loads(request(port, "GET", "/api/model")[2])
    finally:
        proc.kill()
        proc.wait()


def main():
    osprey, src = os.path.abspath(sys.argv[1]), sys.argv[2]
    pth = os.path.join(src, "tests", "golden", "pth")
    config = ["--config", os.path.join(src, "configs", "fashion_simple_cnn.json"), "--device", "cpu",
              "--set", "threads=2"]
    with tempfile.TemporaryDirectory() as tmp:
        image = os.path.join(tmp, "boot.png")
        with open(image, "wb") as f:
            f.write(fashion_png(0))
        converted = os.path.join(tmp, "simple_cnn.safetensors")
        check("wrote 8 tensors" in run([osprey, "convert", os.path.join(pth, "simple_cnn.pth"),
                                        converted]), "convert")
        outputs = []
        for weights in (os.path.join(pth, "simple_cnn.pth"), converted):
            ev = run([osprey, "eval", weights, "--set", "limit_test=200"] + config)
            check("test samples 200 " in ev, "eval: " + ev)
            pred = run([osprey, "predict", "--checkpoint", weights, image] + config)
            answer, model = served(osprey, ["--checkpoint", weights] + config, open(image, "rb").read(),
                                   tmp)
            check(model["class_names"][9] == "Ankle boot", "serve /api/model: %r" % model)
            check(model["checkpoint"] == os.path.basename(weights), "serve /api/model: %r" % model)
            outputs.append((ev, pred, answer))
        check(outputs[0] == outputs[1], "the .pth and its conversion differ: %r" % outputs)
        print(outputs[0][1].strip())

        golden = os.path.join(src, "tests", "golden", "mnv2_cifar_w0.35_c3_b2_40")
        check("PASS" in run([osprey, "verify", golden, "--threads", "2", "--params",
                             os.path.join(pth, "mnv2_cifar_w0.35_c3_b2_40.params.pth")]), "verify")

        exported = os.path.join(tmp, "simple_cnn.onnx")
        check("10 nodes" in run([osprey, "export", "--onnx", exported, os.path.join(pth, "simple_cnn.pth"),
                                 "--config", config[1], "--set", "threads=2"]), "export")
        check(os.path.getsize(exported) > 1000000, "export wrote %d bytes" % os.path.getsize(exported))

        refused = run([osprey, "eval", os.path.join(pth, "simple_cnn.pth")], want_rc=1)
        check("--config" in refused, "eval without --config: " + refused)
        if os.path.exists(MARKER):
            os.remove(MARKER)
        hostile = run([osprey, "predict", "--checkpoint", os.path.join(pth, "reduce_system.pth"),
                       image] + config, want_rc=1)
        check("reduce_system.pth" in hostile and not os.path.exists(MARKER),
              "hostile pickle: " + hostile)
    print("pth_commands: PASS")


if __name__ == "__main__":
    main()
