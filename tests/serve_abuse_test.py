#!/usr/bin/env python3
"""Load-and-abuse test of `osprey serve` (CTest serve_abuse; loopback only, stops by itself in
about 40 s). Python 3 standard library only.

usage: serve_abuse_test.py OSPREY_BINARY [--memory-not-judged]   (the latter for sanitizer builds)

1. A second `osprey serve` on the first one's port fails: non-zero exit, "address already in use".
2. Six pipelined requests on one connection are all answered, in order.
3. Under 50 slowloris sockets (25 sending headers, 25 sending a body, a byte every 0.5 s, each
   reopened when the server closes it) plus normal traffic: 20 /api/health probes each answered
   within 1 s, every prediction answered 200, and the server closes every slow socket by its
   per-request deadline (headers 5 s, bodies max(10 s, length / 64 KiB/s)).
4. 40 clients upload decompression bombs (4096x4096 16-bit RGBA PNGs of ~130 KB) for 8 s: every
   answer is 200 or a quick 503 with Retry-After and a JSON error, and the server's peak RSS
   (VmHWM) stays under its stated bound: the RSS after start-up and one prediction, plus the
   request memory bound of docs/serving.md, plus 64 MiB for the allocator.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

from osprey_test_support import check, fashion_png, png, request, wait_for_url

MIB = 1 << 20
MAX_BODY = 1 * MIB  # --max-body-bytes
SIDE = 4096  # the default --max-image-side


def bomb_png():
    row = b"\0" + bytes(SIDE * 8)  # 16-bit RGBA, all zero: 128 MiB of pixels in ~130 KB
    return png(SIDE, SIDE, 16, 6, row * SIDE)


def status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s in /proc/%d/status" % (key, pid))


def start_server(osprey, run, port, log):
    proc = subprocess.Popen([osprey, "serve", "--checkpoint", run, "--device", "cpu", "--port",
                             str(port), "--max-body-bytes", str(MAX_BODY)],
                            stdout=log, stderr=subprocess.STDOUT)
    return proc


def second_server_fails(osprey, run, port, tmp):
    log_path = os.path.join(tmp, "second.log")
    with open(log_path, "w") as log:
        proc = start_server(osprey, run, port, log)
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("a second server listens on port %d too" % port)
    text = open(log_path).read()
    check(rc != 0 and "address already in use" in text,
          "second server: exit %d, output %r" % (rc, text))
    print("second server on port %d: exit %d, %s" % (port, rc, text.strip().splitlines()[-1]))


def pipelined(port, image):
    reqs = []
    for i in range(6):
        if i % 2:
            reqs.append(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        else:
            reqs.append(b"POST /api/predict?k=%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                        b"image/png\r\nContent-Length: %d\r\n\r\n" % (1 + i // 2, len(image)) + image)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"".join(reqs))
    f = s.makefile("rb")
    for i in range(6):
        status = f.readline()
        check(status.startswith(b"HTTP/1.1 200"), "pipelined answer %d: %r" % (i, status))
        length = 0
        for line in iter(f.readline, b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = json.loads(f.read(length))
        check(("top" in body and len(body["top"]) == 1 + i // 2) if i % 2 == 0 else
              body == {"status": "ok"}, "pipelined answer %d out of order: %r" % (i, body))
    s.close()
    print("6 pipelined requests: 6 answers, in order")


class Slowloris(threading.Thread):
    """Keeps `n` sockets sending a request one byte every 0.5 s; reopens those the server
    closes and records how long each lived."""

    def __init__(self, port, n, body, stop):
        super().__init__(daemon=True)
        self.port, self.n, self.body, self.stop = port, n, body, stop
        self.lifetimes, self.errors = [], []

    def open(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        s.setblocking(False)
        if self.body:
            s.send(b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                   b"Content-Length: 100000\r\n\r\n")
        else:
            s.send(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        return [s, time.monotonic()]

    def run(self):
        try:
            socks = [self.open() for _ in range(self.n)]
            while not self.stop.is_set():
                for entry in socks:
                    s, t0 = entry
                    closed = False
                    try:
                        closed = s.recv(4096) == b""  # an answer (408), then the close
                        while not closed:
                            closed = s.recv(4096) == b""
                    except BlockingIOError:
                        pass
                    except OSError:
                        closed = True
                    if not closed:
                        try:
                            s.send(b"x" if self.body else b"X-Slow: 1\r\n"[:1])
                        except BlockingIOError:
                            pass
                        except OSError:
                            closed = True
                    if closed:
                        self.lifetimes.append(time.monotonic() - t0)
                        s.close()
                        entry[:] = self.open()
                time.sleep(0.5)
            for s, _ in socks:
                s.close()
        except Exception as e:  # reported by the main thread
            self.errors.append(repr(e))


def slowloris_phase(port, image, proc):
    stop = threading.Event()
    slow = [Slowloris(port, 25, False, stop), Slowloris(port, 25, True, stop)]
    for t in slow:
        t.start()
    time.sleep(1.0)
    predictions = []

    def predict_loop():
        while not stop.is_set():
            try:
                predictions.append(request(port, "POST", "/api/predict", image,
                                           {"Content-Type": "image/png"})[0])
            except Exception as e:
                predictions.append(repr(e))
            time.sleep(0.3)
    predictor = threading.Thread(target=predict_loop, daemon=True)
    predictor.start()
    worst = 0.0
    for i in range(20):
        t0 = time.monotonic()
        try:
            status, _, body = request(port, "GET", "/api/health", timeout=1.0)
        except Exception as e:
            raise AssertionError("health probe %d under slowloris: %r" % (i, e))
        took = time.monotonic() - t0
        worst = max(worst, took)
        check(status == 200 and took < 1.0, "health probe %d: %d after %.2f s" % (i, status, took))
        time.sleep(0.7)
    stop.set()
    predictor.join()
    for t in slow:
        t.join()
        check(not t.errors, "slowloris client: %s" % t.errors)
    check(predictions and all(p == 200 for p in predictions),
          "predictions under slowloris: %s" % predictions)
    head_lives, body_lives = slow[0].lifetimes, slow[1].lifetimes
    check(len(head_lives) >= 25 and max(head_lives) < 9.0,
          "slow-header sockets closed after %s s" % head_lives)
    check(len(body_lives) >= 25 and max(body_lives) < 15.0,
          "slow-body sockets closed after %s s" % body_lives)
    check(proc.poll() is None, "the server died")
    print("50 slowloris sockets: 20 health probes (slowest %.3f s), %d predictions all 200, "
          "slow sockets closed after at most %.1f s (headers) and %.1f s (bodies)" %
          (worst, len(predictions), max(head_lives), max(body_lives)))


def memory_phase(port, bomb, proc, bound_kib, judge_memory):
    stop = threading.Event()
    answers, errors = {}, []
    lock = threading.Lock()

    def upload(i):
        boundary = "b0undary%d" % i
        multipart = (("--%s\r\nContent-Disposition: form-data; name=\"image\"; filename=\"b.png\"\r\n"
                      "Content-Type: image/png\r\n\r\n" % boundary).encode() + bomb +
                     ("\r\n--%s--\r\n" % boundary).encode())
        while not stop.is_set():
            try:
                if i % 2:
                    r = request(port, "POST", "/api/predict", multipart,
                                {"Content-Type": "multipart/form-data; boundary=" + boundary}, 60)
                else:
                    r = request(port, "POST", "/api/predict", bomb, {"Content-Type": "image/png"}, 60)
                status, headers, body = r
                ok = status == 200 or (status == 503 and headers.get("Retry-After") and
                                       "busy" in json.loads(body)["error"])
                with lock:
                    answers[status] = answers.get(status, 0) + 1
                    if not ok:
                        errors.append((status, body[:200]))
            except Exception as e:
                with lock:
                    errors.append(repr(e))
            time.sleep(0.02)
    clients = [threading.Thread(target=upload, args=(i,), daemon=True) for i in range(40)]
    for c in clients:
        c.start()
    time.sleep(8.0)
    stop.set()
    for c in clients:
        c.join()
    hwm = status_kib(proc.pid, "VmHWM")
    check(not errors, "bomb uploads: %s" % errors[:5])
    check(answers.get(200, 0) > 0, "no bomb upload was answered 200: %s" % answers)
    print("40 clients uploading %d-byte bombs for 8 s: answers %s; VmHWM %.0f MiB, bound %.0f MiB"
          % (len(bomb), answers, hwm / 1024, bound_kib / 1024))
    if judge_memory:
        check(hwm < bound_kib, "VmHWM %d KiB exceeds the bound %d KiB" % (hwm, bound_kib))
    else:
        print("(memory bound not judged: a sanitizer build quarantines freed memory)")


def main():
    osprey = os.path.abspath(sys.argv[1])
    judge_memory = "--memory-not-judged" not in sys.argv[2:]
    with tempfile.TemporaryDirectory() as tmp:
        run = os.path.join(tmp, "runs", "abuse")
        subprocess.run([osprey, "train", "--set", "limit_train=512", "--set", "limit_test=128",
                        "--set", "epochs=1", "--set", "threads=1", "--set", "progress=false",
                        "--set", "device=cpu", "--set", "runs_dir=" + os.path.join(tmp, "runs"),
                        "--set", "name=abuse"], check=True, stdout=subprocess.DEVNULL)
        image, bomb = fashion_png(), bomb_png()
        log_path = os.path.join(tmp, "serve.log")
        with open(log_path, "w") as log:
            proc = start_server(osprey, run, 0, log)
        try:
            port = wait_for_url(proc, log_path)
            status, _, body = request(port, "POST", "/api/predict", image, {"Content-Type": "image/png"})
            check(status == 200, "first prediction: %d %r" % (status, body))
            model = json.loads(request(port, "GET", "/api/model")[2])
            # docs/serving.md: request bytes (4 uploads + every connection's headers), one
            # maximal decode (16 bytes per pixel + the upload), answers being written.
            documented = (4 * MAX_BODY + 512 * 8192) + (16 * SIDE * SIDE + MAX_BODY) + 512 * 8192
            check(model["limits"]["request_memory_bytes"] == documented,
                  "request memory bound %s, documented %d" % (model["limits"], documented))
            baseline = status_kib(proc.pid, "VmHWM")
            bound_kib = baseline + documented // 1024 + 64 * 1024
            second_server_fails(osprey, run, port, tmp)
            pipelined(port, image)
            slowloris_phase(port, image, proc)
            memory_phase(port, bomb, proc, bound_kib, judge_memory)
            check(request(port, "GET", "/api/health")[0] == 200, "health after the abuse")
            check(request(port, "POST", "/api/predict", image, {"Content-Type": "image/png"})[0] == 200,
                  "prediction after the abuse")
        finally:
            proc.kill()
            proc.wait()
    print("serve_abuse: PASS")


if __name__ == "__main__":
    main()
