#!/usr/bin/env python3
"""Predicts data-parallel step time and efficiency on N ranks from a measured single-rank
step, the gradient bucket layout and a ring all-reduce cost model:

  t_bucket(N) = 2 (N - 1) * latency + 2 (N - 1) / N * bytes / bandwidth
  exposed(N)  = max(t_last_bucket, sum(t_bucket) - overlap * t_compute)
  t_step(N)   = t_compute + exposed(N),   efficiency(N) = t_compute / t_step(N)

Buckets are cut as dist/gradient_bucketer.cpp cuts them (first --first-bucket-mb, then
--bucket-mb, whole parameters approximated as a uniform stream); all but the last bucket can
overlap the remaining backward, which is `overlap` (default 2/3) of the compute time. The last
bucket (the first layers' gradients) is always exposed.

usage: bench/scaling_model.py --compute-ms 34.0 --params 421642 [--bandwidth-gbs 5]
       [--latency-us 2] [--first-bucket-mb 1] [--bucket-mb 25] [--ranks 1 2 4 8]
Prints CSV: ranks, predicted step ms, exposed communication ms, efficiency, images/s factor.
"""
import argparse


def buckets(total_bytes, first, rest):
    sizes, left, cap = [], total_bytes, first
    while left > 0:
        sizes.append(min(cap, left))
        left -= sizes[-1]
        cap = rest
    return sizes


def predict(n, compute_s, sizes, bandwidth, latency, overlap):
    if n == 1:
        return compute_s, 0.0
    cost = [2 * (n - 1) * latency + 2 * (n - 1) / n * b / bandwidth for b in sizes]
    exposed = max(cost[-1], sum(cost) - overlap * compute_s)
    return compute_s + exposed, exposed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--compute-ms", type=float, required=True, help="1-rank step time (ms)")
    p.add_argument("--params", type=int, required=True, help="parameters (fp32 gradients)")
    p.add_argument("--bandwidth-gbs", type=float, default=5.0, help="all-reduce bus GB/s")
    p.add_argument("--latency-us", type=float, default=2.0, help="per-hop latency (us)")
    p.add_argument("--first-bucket-mb", type=float, default=1.0)
    p.add_argument("--bucket-mb", type=float, default=25.0)
    p.add_argument("--overlap", type=float, default=2.0 / 3.0,
                   help="fraction of the step's compute that communication can hide behind")
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    a = p.parse_args()
    compute = a.compute_ms / 1e3
    sizes = buckets(a.params * 4, a.first_bucket_mb * 2**20, a.bucket_mb * 2**20)
    print("ranks,step_ms,exposed_comm_ms,efficiency,throughput_factor")
    for n in a.ranks:
        step, exposed = predict(n, compute, sizes, a.bandwidth_gbs * 1e9, a.latency_us * 1e-6,
                                a.overlap)
        eff = compute / step
        print(f"{n},{step * 1e3:.3f},{exposed * 1e3:.3f},{eff:.3f},{n * eff:.2f}")


if __name__ == "__main__":
    main()
