#!/usr/bin/env python3
"""Training studies on the machine this runs on, each as CSV + gnuplot PNG + Markdown table.

  strategies  one model and recipe trained serially, MPI data parallel, pipeline x data
              parallel, and on one / all GPUs where present: time per epoch, total time,
              images/s, speedup, efficiency and test accuracy
  scaling     strong scaling (fixed global batch) over MPI ranks and OpenMP threads up to the
              cores here (more ranks with --oversubscribe, marked): speedup_table.csv with
              test accuracy, speedup.png, efficiency.png
  batch       accuracy, throughput and peak memory against the batch size for a fixed epoch
              budget, the learning rate scaled by --lr-rule from lr at --base-batch
  sweep       N models (seeds x learning rates) trained side by side on disjoint cores, then
              one after another on all cores: total throughput and each model's result

usage: bench/study.py [--osprey build/osprey] [--out results] [--quick] STUDY... | all
Every run is an `osprey train`; its folder (metrics.jsonl, config.json) and log stay in
OUT/STUDY/runs. Under SLURM pass --launcher "srun --mpi=pmix" (see jobs/scaling_cpu.slurm).
"""
import argparse
import math
import os
import shlex
import subprocess
import sys
import tempfile
import time

from study_runs import Machine, Run, StudyError, gnuplot, train, write_atomic, write_tables

STUDIES = ("strategies", "scaling", "batch", "sweep")


# ---------------------------------------------------------------------------------------------
# The studies


def recipe(args, model):
    """The settings every run of a study shares (the data and epoch budget)."""
    base = {"model": model, "epochs": args.epochs, "seed": 0}
    if args.limit_train:
        base["limit_train"] = args.limit_train
    if args.limit_test:
        base["limit_test"] = args.limit_test
    if args.data_dir:
        base["data_dir"] = args.data_dir
    return base


def study_strategies(args, machine, folder):
    base = dict(recipe(args, args.strategy_model), batch_size=args.batch, device="cpu")
    if args.strategy_model.startswith("mobilenet"):
        base["width_mult"] = args.width
    cores = machine.cores
    plans = [("serial", 1, cores, {}), ("data parallel", cores, 1, {})]
    replicas = max(1, cores // 2)
    plans.append((f"pipeline 2 x data parallel {replicas}", 2 * replicas, 1,
                  {"pipeline_stages": 2, "micro_batches": 4}))
    if args.oversubscribe and replicas == 1:
        plans.append(("pipeline 2 x data parallel 2", 4, 1,
                      {"pipeline_stages": 2, "micro_batches": 4}))
    if machine.gpus >= 1:
        plans.append(("1 GPU", 1, cores, {"device": "cuda"}))
    if machine.gpus >= 2:
        plans.append((f"{machine.gpus} GPUs", machine.gpus, max(1, cores // machine.gpus),
                      {"device": "cuda"}))
    rows = []
    for label, ranks, threads, extra in plans:
        if ranks > 1 and not machine.has_mpi:
            print(f"  {label}: skipped (no MPI)", file=sys.stderr)
            continue
        name = label.replace(" ", "_")
        r = train(machine, os.path.join(folder, "runs"), name, dict(base, **extra), ranks, threads)
        rows.append(dict(r, strategy=label, ranks=ranks, threads=threads,
                         oversubscribed=ranks * threads > cores, device=extra.get("device", "cpu")))
    serial = rows[0]
    for row in rows:
        row["speedup"] = serial["total_s"] / row["total_s"]
        # Every CPU strategy has the same cores; a GPU row is compared, not normalised.
        row["efficiency"] = row["speedup"] if row["device"] == "cpu" else ""
    columns = ["strategy", "device", "ranks", "threads", "oversubscribed", "epochs", "epoch_s",
               "total_s", "images_per_s", "speedup", "efficiency", "test_acc", "best_acc"]
    title = (f"Strategies: {base['model']} on {args.dataset_label}, batch {args.batch}, "
             f"{args.epochs} epochs")
    write_tables(folder, "strategies", title, rows, columns, machine, args.command)
    plot_strategies(folder, title, args.epochs, max(r["images_per_s"] for r in rows))


def plot_strategies(folder, title, epochs, top):
    """strategies.png from strategies.csv: throughput and accuracy bars, values on top; a
    strategy with more ranks than cores is starred."""
    name = 'xtic(strcol(1).(strcol(5) eq "True" ? " *" : ""))'
    gnuplot(folder, "strategies.png", f"""
set multiplot layout 1,2 title "{title}"
set style fill solid 0.8 border -1
set boxwidth 0.6
set xtics rotate by -30 scale 0
set key off
set bmargin 7
set label 1 "* more ranks than cores (oversubscribed)" at screen 0.01, screen 0.03
set title "training throughput (mean over the epochs)"
set ylabel "images/s (train, all ranks)"
set yrange [0:{top * 1.15:.1f}]
plot "strategies.csv" using 0:9:{name} skip 1 with boxes lc rgb "#3465a4", \\
     "" using 0:9:(sprintf("%.0f", $9)) skip 1 with labels offset 0,0.8
unset label 1
set title "test accuracy after {epochs} epochs"
set ylabel "test accuracy (%)"
set yrange [0:100]
plot "strategies.csv" using 0:12:{name} skip 1 with boxes lc rgb "#4e9a06", \\
     "" using 0:12:(sprintf("%.1f", $12)) skip 1 with labels offset 0,0.8
unset multiplot
""")


def scaling_points(args, machine):
    if args.ranks:
        return [(r, args.threads) for r in args.ranks]
    counts = [c for c in (2 ** i for i in range(12)) if c <= machine.cores]
    if machine.cores not in counts:
        counts.append(machine.cores)
    points = [(1, 1)] + [(c, 1) for c in counts if c > 1] + [(1, c) for c in counts if c > 1]
    if args.oversubscribe:
        points.append((2 * machine.cores, 1))
    return points


def study_scaling(args, machine, folder):
    base = dict(recipe(args, args.scaling_model), batch_size=args.batch, device="cpu")
    rows = []
    for ranks, threads in scaling_points(args, machine):
        if ranks > 1 and not machine.has_mpi:
            continue
        if ranks * threads > machine.cores:
            mode = "MPI ranks (oversubscribed)"
        else:
            mode = "OpenMP threads" if ranks == 1 and threads > 1 else "MPI ranks"
        r = train(machine, os.path.join(folder, "runs"), f"r{ranks}_t{threads}", base, ranks,
                  threads)
        rows.append(dict(r, mode=mode, model=base["model"], ranks=ranks, threads=threads,
                         cores=min(ranks * threads, machine.cores), batch=args.batch,
                         batch_per_rank=args.batch // ranks))
    ref = rows[0]
    for row in rows:
        row["speedup"] = row["images_per_s"] / ref["images_per_s"]
        row["efficiency"] = row["speedup"] / (row["ranks"] * row["threads"] /
                                              (ref["ranks"] * ref["threads"]))
    columns = ["mode", "model", "ranks", "threads", "cores", "batch", "batch_per_rank", "epochs",
               "images_per_s", "epoch_s", "total_s", "speedup", "efficiency", "test_acc"]
    title = (f"Strong scaling: {base['model']}, global batch {args.batch}, {args.epochs} "
             f"epochs on {args.dataset_label}")
    write_tables(folder, "speedup_table", title, rows, columns, machine, args.command)
    modes = sorted({row["mode"] for row in rows})
    units = sorted({row["ranks"] * row["threads"] for row in rows})
    top_eff = max([1.0] + [row["efficiency"] for row in rows]) * 1.05
    with tempfile.TemporaryDirectory() as tmp:
        # One line per mode, each from 1 rank x 1 thread; x = ranks x threads.
        data = []
        for i, mode in enumerate(modes):
            sel = sorted((row for row in rows if row["mode"] == mode or row is ref),
                         key=lambda r: r["ranks"] * r["threads"])
            data.append(os.path.join(tmp, f"mode{i}.csv"))
            write_atomic(data[-1], "".join(f"{r['ranks'] * r['threads']},{r['speedup']},"
                                           f"{r['efficiency']}\n" for r in sel))
        for what, col, ideal, yr in (("speedup", 2, "x", "[0:*]"),
                                     ("efficiency", 3, "1", f"[0:{top_eff:.3f}]")):
            plots = ", ".join(f'"{d}" using 1:{col} with linespoints lw 2 pt {7 + i} ps 1.5 '
                              f'title "{m}"' for i, (d, m) in enumerate(zip(data, modes)))
            gnuplot(folder, f"{what}.png", f"""
set title "{title}: {what}"
set xlabel "ranks x threads"
set ylabel "{what} (vs 1 rank x 1 thread{', throughput' if what == 'speedup' else ''})"
set key outside right top
set xrange [{units[0] - 0.5}:{units[-1] + 0.5}]
set xtics ({", ".join(str(u) for u in units)})
set yrange {yr}
plot {plots}, {ideal} with lines dt 2 lw 2 lc "black" title "ideal"
""")


def scaled_lr(args, batch):
    factor = batch / args.base_batch
    return args.lr * {"linear": factor, "sqrt": math.sqrt(factor), "none": 1.0}[args.lr_rule]


def study_batch(args, machine, folder):
    base = dict(recipe(args, args.batch_model), device=args.device)
    rows = []
    for batch in args.batches:
        lr = scaled_lr(args, batch)
        r = train(machine, os.path.join(folder, "runs"), f"batch{batch}",
                  dict(base, batch_size=batch, lr=lr), 1, machine.cores)
        rows.append(dict(r, batch=batch, lr=lr, model=base["model"]))
    columns = ["model", "batch", "lr", "epochs", "images_per_s", "epoch_s", "total_s",
               "peak_rss_mb", "test_acc", "best_acc", "train_loss"]
    title = (f"Batch size: {base['model']}, {args.epochs} epochs on {args.dataset_label}, "
             f"lr {args.lr:g} x ({args.lr_rule} of batch/{args.base_batch})")
    write_tables(folder, "batch_size", title, rows, columns, machine, args.command)
    plot_batch(folder, title, args.batches)


def plot_batch(folder, title, batches):
    """batch_size.png from batch_size.csv (three panels against the batch size)."""
    tics = ", ".join(str(b) for b in batches)
    gnuplot(folder, "batch_size.png", f"""
set multiplot layout 1,3 title "{title}"
set logscale x 2
set xlabel "batch size (images per step)"
set xtics ({tics}) rotate by -45
set key off
set xrange [{batches[0] / 1.4}:{batches[-1] * 1.4}]
set title "test accuracy"
set ylabel "test accuracy (%)"
plot "batch_size.csv" using 2:9 skip 1 with linespoints lw 2 pt 7 lc rgb "#4e9a06"
set title "training throughput"
set ylabel "images/s"
set yrange [0:*]
plot "batch_size.csv" using 2:5 skip 1 with linespoints lw 2 pt 7 lc rgb "#3465a4"
set title "peak memory (resident)"
set ylabel "peak RSS (MiB)"
plot "batch_size.csv" using 2:8 skip 1 with linespoints lw 2 pt 7 lc rgb "#cc0000"
unset multiplot
""")


def study_sweep(args, machine, folder):
    base = dict(recipe(args, args.sweep_model), batch_size=args.batch, device=args.device)
    n = args.models or max(2, machine.cores)
    lrs = [args.lr * 2 ** (i - 1) for i in range(n)]
    # Disjoint core sets (shared when there are more models than cores; a GPU is shared).
    per = max(1, machine.cores // n)
    groups = [machine.cpus[(i * per) % machine.cores:(i * per) % machine.cores + per]
              for i in range(n)]
    runs_dir = os.path.join(folder, "runs")
    print(f"  side by side: {n} models x {per} core(s)", file=sys.stderr, flush=True)
    start = time.monotonic()
    runs = [Run(machine, runs_dir, f"parallel_{i}", dict(base, lr=lrs[i], seed=i), 1, per,
                cpus=groups[i]) for i in range(n)]
    results = [r.wait() for r in runs]
    parallel_s = time.monotonic() - start
    rows = [dict(r, model_id=i, mode="side by side", lr=lrs[i], seed=i, cores=per)
            for i, r in enumerate(results)]
    start = time.monotonic()
    for i in range(n):
        r = train(machine, runs_dir, f"sequential_{i}", dict(base, lr=lrs[i], seed=i), 1,
                  machine.cores)
        rows.append(dict(r, model_id=i, mode="one after another", lr=lrs[i], seed=i,
                         cores=machine.cores))
    sequential_s = time.monotonic() - start
    train_images = sum(r["train_images"] for r in results)
    totals = [{"mode": "side by side", "models": n, "cores_per_model": per,
               "wall_s": parallel_s, "images_per_s": train_images / parallel_s},
              {"mode": "one after another", "models": n, "cores_per_model": machine.cores,
               "wall_s": sequential_s, "images_per_s": train_images / sequential_s}]
    for t in totals:
        t["speedup"] = sequential_s / t["wall_s"]
    columns = ["model_id", "mode", "seed", "lr", "cores", "epochs", "images_per_s", "total_s",
               "test_acc", "best_acc", "train_loss"]
    title = (f"Sweep: {n} x {base['model']} (seed i, lr {args.lr:g} x 2^(i-1)), "
             f"{args.epochs} epochs on {args.dataset_label}")
    tcols = ["mode", "models", "cores_per_model", "wall_s", "images_per_s", "speedup"]
    caption = "Totals (training images of all models / wall time of the whole sweep):"
    write_tables(folder, "sweep", title, rows, columns, machine, args.command,
                 extra=[("sweep_total", caption, totals, tcols)])
    gnuplot(folder, "sweep.png", f"""
set multiplot layout 1,2 title "{title}"
set style fill solid 0.8 border -1
set boxwidth 0.6
set key off
set title "total training throughput of the sweep"
set ylabel "images/s (all models)"
set yrange [0:*]
set xtics scale 0
plot "sweep_total.csv" using 0:5:xtic(1) skip 1 with boxes lc rgb "#3465a4"
set title "each model's test accuracy"
set ylabel "test accuracy (%)"
set xlabel "model (seed i, lr {args.lr:g} x 2^(i-1))"
set yrange [0:100]
set xrange [-0.6:{n - 0.4}]
set xtics 1
set boxwidth 0.35
set key top left
plot "sweep.csv" every ::1::{n} using ($1-0.18):9 with boxes lc rgb "#4e9a06" title "side by side", \\
     "sweep.csv" every ::{n + 1} using ($1+0.18):9 with boxes lc rgb "#73d216" title "one after another"
unset multiplot
""")


# ---------------------------------------------------------------------------------------------


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("studies", nargs="+", choices=STUDIES + ("all",))
    p.add_argument("--osprey", default=os.environ.get("OSPREY", "build/osprey"))
    p.add_argument("--out", default="results", help="a folder per study is written here")
    p.add_argument("--launcher", default="mpirun", help='e.g. "srun --mpi=pmix"')
    p.add_argument("--quick", action="store_true",
                   help="tiny settings (a smoke test of the driver, not a measurement)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=256, help="strategies, scaling, sweep")
    p.add_argument("--limit-train", type=int, default=0, help="0 = the whole training set")
    p.add_argument("--limit-test", type=int, default=0)
    p.add_argument("--data-dir", default="", help="default: osprey's (Fashion-MNIST)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="batch, sweep")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's rate at --base-batch")
    p.add_argument("--strategy-model", default="mobilenet_v2_cifar")
    p.add_argument("--width", type=float, default=0.5, help="strategies' MobileNetV2 width")
    p.add_argument("--scaling-model", default="simple_cnn")
    p.add_argument("--ranks", type=int, nargs="+", help="scaling: these rank counts only")
    p.add_argument("--threads", type=int, default=1, help="scaling with --ranks: per rank")
    p.add_argument("--oversubscribe", action="store_true",
                   help="also more ranks than cores (marked as such)")
    p.add_argument("--batch-model", default="simple_cnn")
    p.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    p.add_argument("--base-batch", type=int, default=128)
    p.add_argument("--lr-rule", default="sqrt", choices=("sqrt", "linear", "none"),
                   help="lr at batch B = lr x rule(B / base-batch); sqrt suits Adam")
    p.add_argument("--sweep-model", default="simple_cnn")
    p.add_argument("--models", type=int, default=0, help="sweep: models (0 = max(2, cores))")
    a = p.parse_args(argv)
    if a.quick:
        a.epochs, a.limit_train, a.limit_test, a.width = 1, 256, 128, 0.25
        a.batch, a.batches = 64, [32, 64]
    a.studies = list(STUDIES) if "all" in a.studies else list(dict.fromkeys(a.studies))
    a.dataset_label = "Fashion-MNIST" if not a.data_dir else a.data_dir
    if a.limit_train:
        a.dataset_label += f" (first {a.limit_train} training images)"
    a.command = "bench/study.py " + shlex.join(argv)
    return a


def main(argv):
    args = parse_args(argv)
    try:
        machine = Machine(args)
        for study in args.studies:
            folder = os.path.join(args.out, {"batch": "batch_size"}.get(study, study))
            os.makedirs(folder, exist_ok=True)
            print(f"== study {study} -> {folder}", file=sys.stderr, flush=True)
            globals()["study_" + study](args, machine, folder)
            with open(os.path.join(folder, "table.md")) as f:
                print(f.read())
    except (StudyError, OSError, subprocess.CalledProcessError) as e:
        print(f"study.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
