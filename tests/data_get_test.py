"""`osprey data get` against a local HTTP server (127.0.0.1, a free port, stopped at the end) that
serves small synthetic archives: a good CIFAR-10 tarball, a truncated one, one whose connection
drops halfway (then resumed with a Range request), one that drops every time (resumed by a second
run), one with a `../../etc/x` entry, and MNIST's four files. Also: a wrong checksum deletes the
download, `--from` uses a local file without changing it, http_proxy is honoured, and `osprey
train` starts on what `data get cifar10` left and names the command when the data is missing.
Python 3 standard library only. Usage: data_get_test.py OSPREY_BIN SOURCE_DIR"""
import gzip
import hashlib
import http.server
import io
import os
import re
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.parse
import zipfile

from osprey_test_support import check

CIFAR = "cifar-10-binary.tar.gz"
RECORDS = 4  # per batch file: 3073 bytes each


def tar_gz(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def cifar_batch(seed):
    out = bytearray()
    for r in range(RECORDS):
        out.append((seed + r) % 10)
        out += bytes((seed * 31 + r * 7 + i) % 256 for i in range(3072))
    return bytes(out)


def cifar_archive():
    base = "cifar-10-batches-bin/"
    entries = [(base, None)]
    entries += [(base + "data_batch_%d.bin" % i, cifar_batch(i)) for i in range(1, 6)]
    entries += [(base + "test_batch.bin", cifar_batch(9)),
                (base + "batches.meta.txt", b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\n"
                 b"horse\nship\ntruck\n"),
                (base + "readme.html", b"<p>synthetic</p>\n")]
    return tar_gz(entries)


def idx_files():
    images = struct.pack(">IIII", 0x803, 3, 28, 28) + bytes(range(256)) * 9 + bytes(48)
    labels = struct.pack(">II", 0x801, 3) + bytes([1, 2, 3])
    files = {}
    for split in ("train", "t10k"):
        files[split + "-images-idx3-ubyte.gz"] = gzip.compress(images, mtime=0)
        files[split + "-labels-idx1-ubyte.gz"] = gzip.compress(labels, mtime=0)
    return files


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Server:
    """Routes: /good/F (Range honoured), /truncated/F (half, cleanly ended), /drop/F (the first
    request breaks halfway), /dropalways/F (every request breaks halfway through what it asked
    for), /evil/F (a ../../etc/x entry), /mnist/F."""

    def __init__(self, files):
        self.files = files
        self.ranges = []    # (route, Range header) of each request that had one
        self.absolute = []  # request targets in absolute form: what a proxy receives
        self.dropped = set()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.handle(self)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, route, name=CIFAR):
        return "http://127.0.0.1:%d/%s/%s" % (self.port, route, name)

    def handle(self, h):
        target = urllib.parse.urlsplit(h.path)
        if target.scheme:
            self.absolute.append(h.path)
        parts = target.path.strip("/").split("/")
        route, name = parts[0], parts[-1]
        data = self.files.get((route, name))
        if data is None:
            h.send_error(404)
            return
        start = 0
        rng = h.headers.get("Range")
        if rng:
            self.ranges.append((route, rng))
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            start = int(m.group(1)) if m else 0
        if start >= len(data):
            h.send_response(416)
            h.send_header("Content-Range", "bytes */%d" % len(data))
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        body = data[start:]
        if route == "truncated":
            body = body[:len(body) // 2]
        h.send_response(206 if start else 200)
        if start:
            h.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        drop = route == "dropalways" or (route == "drop" and name not in self.dropped)
        if drop:
            self.dropped.add(name)
            h.wfile.write(body[:len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        h.wfile.write(body)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Runner:
    def __init__(self, osprey, source_dir, work):
        self.osprey, self.source_dir, self.work = osprey, source_dir, work
        self.env = {k: v for k, v in os.environ.items()
                    if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}

    def run(self, *args, env=None, timeout=120):
        p = subprocess.run([self.osprey, *args], cwd=self.work, env=env or self.env,
                           capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def get(self, directory, *args, env=None):
        return self.run("data", "get", "cifar10", "--dir", directory, *args, env=env)


def listing(directory):
    out = []
    for root, dirs, files in os.walk(directory):
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(root, n), directory))
    return sorted(out)


EXPECTED = sorted(["cifar-10-batches-bin"] + ["cifar-10-batches-bin/" + n for n in (
    "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
    "data_batch_5.bin", "test_batch.bin", "batches.meta.txt", "readme.html")])


def test_good_and_train(r, srv, good, work):
    d = os.path.join(work, "good")
    rc, out = r.get(d, "--url", srv.url("good"), "--sha256", sha256(good))
    check(rc == 0, "good download failed: " + out)
    check(listing(d) == EXPECTED, "good download left %s" % listing(d))
    rc, out = r.get(d, "--url", srv.url("good"), "--sha256", sha256(good))
    check(rc == 0 and "already in" in out, "a second get should find it in place: " + out)
    config = os.path.join(r.source_dir, "configs", "cifar10_mobilenet_v2_224.json")
    rc, out = r.run("train", "--config", config, "--set", "data_dir=" + d, "--set", "epochs=1",
                    "--set", "stop_after_steps=1", "--set", "batch_size=2", "--set",
                    "eval_batch_size=2", "--set", "limit_train=4", "--set", "limit_test=2",
                    "--set", "threads=2", "--set", "progress=false", "--set",
                    "runs_dir=" + os.path.join(work, "runs"), timeout=600)
    check(rc == 0, "osprey train on the downloaded CIFAR-10 failed: " + out)


def test_missing_dataset_names_the_command(r, work):
    config = os.path.join(r.source_dir, "configs", "cifar10_mobilenet_v2_224.json")
    empty = os.path.join(work, "empty")
    rc, out = r.run("train", "--config", config, "--set",
                    "data_dir=" + os.path.join(empty, "cifar-10-batches-bin"))
    check(rc == 1 and "osprey data get cifar10 --dir " + empty in out,
          "train on a missing dataset should name the command: " + out)


def test_bad_downloads(r, srv, good, work):
    d = os.path.join(work, "wrong")
    rc, out = r.get(d, "--url", srv.url("good"), "--sha256", "0" * 64)
    check(rc == 1 and "SHA-256" in out and "deleted" in out, "wrong checksum: " + out)
    check(listing(d) == [], "a wrong checksum left %s" % listing(d))
    d = os.path.join(work, "truncated")
    rc, out = r.get(d, "--url", srv.url("truncated"), "--sha256", sha256(good))
    check(rc == 1 and "deleted" in out, "truncated: " + out)
    check(listing(d) == [], "a truncated download left %s" % listing(d))
    rc, out = r.get(os.path.join(work, "404"), "--url", srv.url("nothing"))
    check(rc == 1 and "HTTP status 404" in out, "404: " + out)


def test_resume(r, srv, good, work):
    d = os.path.join(work, "drop")
    rc, out = r.get(d, "--url", srv.url("drop"), "--sha256", sha256(good))
    check(rc == 0 and "resuming" in out, "a dropped connection should be resumed: " + out)
    check(listing(d) == EXPECTED, "after the resume: %s" % listing(d))
    check(any(route == "drop" and rng != "bytes=0-" for route, rng in srv.ranges),
          "no Range request resumed the download: %s" % srv.ranges)
    d = os.path.join(work, "rerun")
    rc, out = r.get(d, "--url", srv.url("dropalways"), "--sha256", sha256(good))
    check(rc == 1 and "run the same command again to resume" in out, "always dropped: " + out)
    part = os.path.join(d, CIFAR + ".part")
    kept = os.path.getsize(part)
    check(0 < kept < len(good), "the .part should hold a prefix: %d bytes" % kept)
    rc, out = r.get(d, "--url", srv.url("good"), "--sha256", sha256(good))
    check(rc == 0 and "resuming from the %d bytes" % kept in out, "second run: " + out)
    check(("good", "bytes=%d-" % kept) in srv.ranges, "not resumed at %d: %s" % (kept, srv.ranges))
    check(listing(d) == EXPECTED, "after the second run: %s" % listing(d))


def test_traversal(r, srv, evil, work):
    d = os.path.join(work, "a", "b", "evil")
    rc, out = r.get(d, "--url", srv.url("evil"), "--sha256", sha256(evil))
    check(rc == 1 and "../../etc/x" in out and "refused" in out, "traversal: " + out)
    check(not os.path.exists(os.path.join(work, "a", "etc")), "../../etc/x was written")
    check(listing(d) == [CIFAR], "a refused archive left %s" % listing(d))


def test_from(r, good, work):
    local = os.path.join(work, CIFAR)
    with open(local, "wb") as f:
        f.write(good)
    d = os.path.join(work, "from")
    rc, out = r.get(d, "--from", local, "--sha256", "1" * 64)
    check(rc == 1 and "not used" in out and os.path.getsize(local) == len(good),
          "--from with a wrong checksum must keep the file: " + out)
    rc, out = r.get(d, "--from", local, "--sha256", sha256(good))
    check(rc == 0 and listing(d) == EXPECTED, "--from: " + out)
    check(os.path.getsize(local) == len(good), "--from changed its file")


def test_proxy(r, srv, good, work):
    env = dict(r.env, http_proxy="http://127.0.0.1:%d" % srv.port)
    url = "http://osprey-data-get.invalid/good/" + CIFAR
    rc, out = r.get(os.path.join(work, "proxy"), "--url", url, "--sha256", sha256(good), env=env)
    check(rc == 0 and url in srv.absolute, "http_proxy not used: %s %s" % (out, srv.absolute))


def test_mnist_and_usage(r, srv, work):
    d = os.path.join(work, "mnist")
    sums = ["--sha256=%s=%s" % (n, sha256(b)) for n, b in idx_files().items()]
    rc, out = r.run("data", "get", "mnist", "--dir", d, "--url",
                    "http://127.0.0.1:%d/mnist" % srv.port, *sums)
    check(rc == 0 and listing(d) == sorted(idx_files()), "mnist: %s %s" % (out, listing(d)))
    rc, out = r.run("data", "get", "cifar1", "--dir", d)
    check(rc == 2 and "did you mean 'cifar10'" in out, "unknown name: " + out)
    rc, out = r.run("data", "get", "tmnist", "--dir", d)
    check(rc == 2 and "--url URL or --from FILE" in out, "tmnist without a URL: " + out)


def test_tmnist_download(r, srv, work):
    """A tmnist download, zipped or plain, ends as TMNIST_Data.csv alone: the zip never holds
    the CSV's name, and nothing of the download is left."""
    csv = srv.files[("tmnist", "TMNIST_Data.csv")]
    for name in ("TMNIST_Data.zip", "TMNIST_Data.csv"):
        d = os.path.join(work, "tm_" + name)
        rc, out = r.run("data", "get", "tmnist", "--dir", d, "--url", srv.url("tmnist", name))
        check(rc == 0 and listing(d) == ["TMNIST_Data.csv"], "tmnist %s: %s %s" % (name, out, listing(d)))
        with open(os.path.join(d, "TMNIST_Data.csv"), "rb") as f:
            check(f.read() == csv, "tmnist %s: the CSV differs" % name)


def tmnist_files():
    csv = b"names,labels," + b",".join(b"%d" % i for i in range(1, 785)) + b"\n"
    csv += b"Font-Regular,A," + b",".join(b"0" for _ in range(784)) + b"\n"
    packed = io.BytesIO()
    with zipfile.ZipFile(packed, "w") as z:
        z.writestr("TMNIST_Data.csv", csv)
    return {("tmnist", "TMNIST_Data.csv"): csv, ("tmnist", "TMNIST_Data.zip"): packed.getvalue()}


def main():
    osprey, source_dir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    good, evil = cifar_archive(), tar_gz([("cifar-10-batches-bin/data_batch_1.bin", b"x"),
                                          ("../../etc/x", b"owned\n")])
    files = {(route, CIFAR): good for route in ("good", "truncated", "drop", "dropalways")}
    files[("evil", CIFAR)] = evil
    files.update({("mnist", n): b for n, b in idx_files().items()})
    files.update(tmnist_files())
    srv = Server(files)
    try:
        with tempfile.TemporaryDirectory() as work:
            r = Runner(osprey, source_dir, work)
            test_good_and_train(r, srv, good, work)
            test_missing_dataset_names_the_command(r, work)
            test_bad_downloads(r, srv, good, work)
            test_resume(r, srv, good, work)
            test_traversal(r, srv, evil, work)
            test_from(r, good, work)
            test_proxy(r, srv, good, work)
            test_mnist_and_usage(r, srv, work)
            test_tmnist_download(r, srv, work)
    finally:
        srv.stop()
    print("data get: all checks passed")


if __name__ == "__main__":
    main()
