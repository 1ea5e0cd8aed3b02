#!/usr/bin/env python3
"""usage: study_test.py REPO OSPREY [LAUNCHER]

Runs bench/study.py all --quick with OSPREY into a temporary folder and checks what each study
wrote: the CSV's columns and one row per run it should have made (ranks, threads, batch sizes,
modes), values in range, every PNG a real PNG of the driver's size, the Markdown table with a
row per CSV row. The driver itself fails a run whose world size differs from the ranks asked.
"""
import csv
import os
import shutil
import struct
import subprocess
import sys
import tempfile

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def rows_of(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def check_png(path):
    with open(path, "rb") as f:
        head = f.read(24)
    ok = head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    size = struct.unpack(">II", head[16:24]) if ok else None
    check(size == (1000, 560), f"{path}: a 1000 x 560 PNG (got {size})")


def check_table(folder, stem, n_rows):
    with open(os.path.join(folder, "table.md")) as f:
        lines = [l for l in f if l.startswith("| ")]
    # The header row plus one row per CSV row (the sweep adds its totals table).
    check(len(lines) >= n_rows + 1, f"{folder}/table.md: {len(lines)} table lines for {n_rows} rows")


def main(repo, osprey, launcher="mpirun"):
    out = tempfile.mkdtemp(prefix="osprey-study-")
    cmd = [sys.executable, os.path.join(repo, "bench", "study.py"), "all", "--quick",
           "--osprey", osprey, "--out", out, "--launcher", launcher]
    run = subprocess.run(cmd, cwd=repo, capture_output=True, text=True)
    print(run.stderr[-3000:])
    if run.returncode != 0:
        print(f"FAIL: study.py exited {run.returncode}")
        return 1
    cores = len(os.sched_getaffinity(0))

    s = rows_of(os.path.join(out, "strategies", "strategies.csv"))
    names = [r["strategy"] for r in s]
    check(names[:2] == ["serial", "data parallel"] and names[2].startswith("pipeline 2 x"),
          f"strategies: serial, data parallel, pipeline (got {names})")
    check([r["ranks"] for r in s[:2]] == ["1", str(cores)], "strategies: 1 and all-core ranks")
    check(float(s[0]["speedup"]) == 1.0, "strategies: speedup 1 for serial")
    for r in s:
        check(0 <= float(r["test_acc"]) <= 100, f"strategies: accuracy in % ({r['test_acc']})")
        check(float(r["images_per_s"]) > 0, "strategies: a throughput")
    check_png(os.path.join(out, "strategies", "strategies.png"))
    check_table(os.path.join(out, "strategies"), "strategies", len(s))

    sc = rows_of(os.path.join(out, "scaling", "speedup_table.csv"))
    points = [(r["ranks"], r["threads"]) for r in sc]
    check(points[0] == ("1", "1") and ("2", "1") in points and ("1", "2") in points,
          f"scaling: 1x1, 2x1 and 1x2 (got {points})")
    check(all(r["test_acc"] for r in sc), "scaling: an accuracy column")
    check(all(int(r["batch_per_rank"]) * int(r["ranks"]) == int(r["batch"]) for r in sc),
          "scaling: the global batch split over the ranks")
    for png in ("speedup.png", "efficiency.png"):
        check_png(os.path.join(out, "scaling", png))

    b = rows_of(os.path.join(out, "batch_size", "batch_size.csv"))
    check([r["batch"] for r in b] == ["32", "64"], "batch: one row per batch size")
    check(abs(float(b[1]["lr"]) / float(b[0]["lr"]) - 2 ** 0.5) < 1e-9, "batch: sqrt lr rule")
    check(all(float(r["peak_rss_mb"]) > 10 for r in b), "batch: a peak memory")
    check_png(os.path.join(out, "batch_size", "batch_size.png"))

    sw = rows_of(os.path.join(out, "sweep", "sweep.csv"))
    models = max(2, cores)
    check(len(sw) == 2 * models, f"sweep: {models} models twice (got {len(sw)} rows)")
    # Model i has the same seed and rate in both modes, and a rate of its own.
    for i in range(models):
        a, b = sw[i], sw[models + i]
        check((a["mode"], b["mode"]) == ("side by side", "one after another"), "sweep: modes")
        check((a["seed"], a["lr"]) == (b["seed"], b["lr"]), f"sweep: model {i}'s settings")
        check(0 <= float(a["test_acc"]) <= 100, f"sweep: accuracy in % ({a['test_acc']})")
    check(len({r["lr"] for r in sw}) == models, "sweep: a rate per model")
    totals = rows_of(os.path.join(out, "sweep", "sweep_total.csv"))
    check([t["mode"] for t in totals] == ["side by side", "one after another"], "sweep totals")
    check_png(os.path.join(out, "sweep", "sweep.png"))
    print(f"{len(failures)} failure(s); outputs in {out}")
    if not failures:
        shutil.rmtree(out)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
