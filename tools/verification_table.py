"""Prints docs/verification.md's table: `osprey verify` on every reference in tests/golden, one
markdown row each (worst errors per kind of quantity, PyTorch's own fp32 error, the fp32 chance
bound and the verdict).

usage: python3 tools/verification_table.py OSPREY_BINARY [GOLDEN_DIR]
Needs only the standard library; the references carry PyTorch's figures in their metadata."""
import glob
import os
import re
import subprocess
import sys

ROW = re.compile(r"^(\S+)(?: \(zero: [^)]*\))?\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+"
                 r"(ok \(fp32 chance\)|ok|FAIL|-)$")
BOUND = re.compile(r"^fp32 chance bound .*: gradients (\S+), statistics (\S+)$")


def verify(binary, prefix):
    run = subprocess.run([binary, "verify", prefix], capture_output=True, text=True)
    rows, bound, verdict = {}, "-", None
    for line in run.stdout.splitlines():
        if line.startswith("quantity "):
            continue
        if m := ROW.match(line):
            rows[m.group(1)] = (float(m.group(2)), m.group(4), m.group(6))
        elif m := BOUND.match(line):
            bound = m.group(1)
        elif line.startswith("verdict: "):
            verdict = line[len("verdict: "):]
    if verdict is None or not rows:
        sys.exit(f"{binary} verify {prefix} printed no verdict (exit {run.returncode}):\n"
                 f"{run.stdout}{run.stderr}")
    return rows, bound, verdict, run.returncode


def worst(rows, keep):
    values = [v for q, v in rows.items() if keep(q)]
    return max(values, key=lambda v: v[0]) if values else None


def fmt(value):
    return "-" if value is None else f"{value:.1e}"


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    here = os.path.dirname(os.path.abspath(__file__))
    golden = sys.argv[2] if len(sys.argv) == 3 else os.path.join(here, "..", "tests", "golden")
    prefixes = sorted(p[:-len(".ref.safetensors")]
                      for p in glob.glob(os.path.join(golden, "*.ref.safetensors")))
    print("| reference | eval logits | train logits | loss | worst running stat | input grad | "
          "worst parameter grad | PyTorch fp32 worst grad | gradient bound | grads over 1e-3 | "
          "verdict, exit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for prefix in prefixes:
        rows, bound, verdict, rc = verify(sys.argv[1], prefix)
        param = worst(rows, lambda q: q.startswith("grad."))
        stat = worst(rows, lambda q: q.startswith("after_train_forward."))
        grads = [v for q, v in rows.items() if q.startswith("grad")]
        torch = [float(v[1]) for v in grads if v[1] != "-"]
        over = sum(v[0] > 1e-3 for v in grads)
        short = "PASS (fp32 chance)" if verdict.startswith("PASS (") else verdict
        cells = [os.path.basename(prefix), fmt(rows["eval_logits"][0]),
                 fmt(rows["train_logits"][0]), fmt(rows["loss"][0]), fmt(stat and stat[0]),
                 fmt(rows["grad_input"][0]), fmt(param[0]), fmt(max(torch) if torch else None),
                 fmt(None if bound == "-" else float(bound)), f"{over} of {len(grads)}",
                 f"{short}, {rc}"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
