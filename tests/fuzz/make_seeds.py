#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/fuzz_*.cpp): a few small valid
inputs per target, in the input layout each target expects, so the fuzzers start from files
that reach deep into the readers. Standard library only.
usage: tests/fuzz/make_seeds.py OUTDIR   (makes OUTDIR/<target>/seed_*)"""
import base64
import gzip
import json
import os
import struct
import sys
import zipfile
import zlib

# 8x8 baseline JPEGs (gray, and RGB with 4:2:0 chroma), written once with libjpeg-turbo's
# tjCompress2 at quality 75: the standard library has no JPEG encoder.
JPEG_GRAY = base64.b64decode("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAAIAAgBAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/AIbG2t7jQ7m0sIv7N8Pw5F1qMmQ9zFwNoXGVVjkbeWfKjAyVP//Z")
JPEG_RGB = base64.b64decode("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/2wBDAQkJCQwLDBgNDRgyIRwhMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjL/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QAHwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdhcRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwCKHy7MzwTxBIiFXeOigBlGVxjGNyn5egIxgPEpRRSqUnKXNGTje2zt0OzD4OniaUalRu/+Tt+R/9k=")


def png(w, h, channels, depth=8):
    color = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    row = w * channels * depth // 8
    raw = b"".join(b"\x00" + bytes((x * 31 + y * 17) % 256 for x in range(row)) for y in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def idx_pair(n, rows, cols, gz):
    images = struct.pack(">IIII", 0x803, n, rows, cols) + bytes(i % 256 for i in range(n * rows * cols))
    labels = struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))
    if gz:
        images, labels = gzip.compress(images, mtime=0), gzip.compress(labels, mtime=0)
    return struct.pack(">I", len(images)) + images + labels


def cifar(n):
    return b"".join(bytes([i % 10]) + bytes((i + j) % 256 for j in range(3072)) for i in range(n))


def tmnist(rows):
    head = "names,labels," + ",".join(str(i) for i in range(1, 785))
    lines = [head] + [f"Font-{r},{chr(33 + r)}," + ",".join(str((r + i) % 256) for i in range(784))
                      for r in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def safetensors(tensors, metadata=None):
    header, blobs, off = {}, [], 0
    for name, (dtype, shape, data) in sorted(tensors.items()):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def f32(n):
    return struct.pack(f"<{n}f", *[(i % 7 - 3) * 0.01 for i in range(n)])


def simple_cnn_state_dict():
    # SimpleCnn(1 channel, 8x8, 3 classes): the model fuzz_safetensors loads into.
    shapes = {"conv1.weight": [32, 1, 3, 3], "conv1.bias": [32], "conv2.weight": [64, 32, 3, 3],
              "conv2.bias": [64], "fc1.weight": [128, 256], "fc1.bias": [128],
              "fc2.weight": [3, 128], "fc2.bias": [3]}
    tensors = {}
    for k, s in shapes.items():
        n = 1
        for d in s:
            n *= d
        tensors[k] = ("F32", s, f32(n))
    return safetensors(tensors, {"model": "simple_cnn"})


def configs():
    return [
        {"epochs": 2, "batch_size": 64, "lr": 0.001, "optimizer": "adam"},
        {"model": "mobilenet_v2_cifar", "channels": 3, "augment": "cifar", "schedule": "cosine"},
        {"augment": [{"type": "random_resized_crop", "size": 24}, {"type": "hflip"},
                     {"type": "color_jitter", "brightness": 0.2},
                     {"type": "normalize", "mean": [0.5], "std": [0.25]}]},
    ]


def http_requests():
    body = png(4, 4, 1)
    multipart = (b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                 b"Content-Type: image/png\r\n\r\n" + body + b"\r\n--XyZ--\r\n")
    return [
        b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        b"GET /api/model HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        b"POST /api/predict?k=3 HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
        + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
        b"POST /api/predict HTTP/1.1\r\nHost: localhost\r\n"
        + b"Content-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: "
        + str(len(multipart)).encode() + b"\r\n\r\n" + multipart,
    ]


def pth_seeds():
    # torch.save's files from tests/golden/pth (made by make_pth.py with PyTorch): whole small
    # archives, and their data.pkl alone for the unpickler.
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden", "pth")
    seeds = []
    for name in ("plain", "views", "dtypes", "checkpoint"):
        path = os.path.join(folder, name + ".pth")
        with open(path, "rb") as f:
            seeds.append(f.read())
        with zipfile.ZipFile(path) as z:
            seeds += [z.read(n) for n in z.namelist() if n.endswith("/data.pkl")]
    return seeds


def main():
    out = sys.argv[1]
    seeds = {
        "fuzz_idx": [idx_pair(3, 4, 4, False), idx_pair(2, 28, 28, True)],
        "fuzz_cifar10": [cifar(1), cifar(3)],
        "fuzz_tmnist": [tmnist(1), tmnist(3)],
        "fuzz_image": [png(4, 4, 1), png(5, 3, 3), png(2, 2, 4), png(3, 3, 1, depth=16),
                       JPEG_GRAY, JPEG_RGB],
        "fuzz_safetensors": [simple_cnn_state_dict(),
                             safetensors({"x": ("F32", [2, 2], f32(4)), "n": ("I64", [1], b"\x01" + b"\x00" * 7)})],
        "fuzz_config": [json.dumps(c).encode() for c in configs()],
        "fuzz_http_request": http_requests(),
        "fuzz_pth": pth_seeds(),
    }
    for target, items in seeds.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for i, data in enumerate(items):
            with open(os.path.join(d, f"seed_{i}"), "wb") as f:
                f.write(data)
    print(f"make_seeds: {sum(len(v) for v in seeds.values())} seeds for {len(seeds)} targets in {out}")


if __name__ == "__main__":
    main()
