"""What the Python tests of osprey's commands share: PNGs written with zlib, a Fashion-MNIST test
image as one, HTTP requests to a server on the loopback, and the wait for `osprey serve`'s URL.
Python 3 standard library only."""
import gzip
import http.client
import re
import struct
import time
import zlib

FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def png(width, height, depth, color, rows):
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) +
            chunk(b"IEND", b""))


def fashion_png(index=0):
    raw = gzip.open(FMNIST).read()[16 + index * 784:16 + (index + 1) * 784]
    return png(28, 28, 8, 0, b"".join(b"\0" + raw[r * 28:(r + 1) * 28] for r in range(28)))


def request(port, method, path, body=None, headers=None, timeout=10.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def wait_for_url(proc, log_path):
    for _ in range(300):
        text = open(log_path).read()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", text)
        if m:
            return int(m.group(1))
        check(proc.poll() is None, "the server exited: " + text)
        time.sleep(0.1)
    raise AssertionError("the server did not start")
