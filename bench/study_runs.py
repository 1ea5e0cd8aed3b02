"""What bench/study.py's studies share: the machine, one `osprey train` run and its figures,
and the CSV / Markdown / gnuplot output (every file written through a temporary name)."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time


class StudyError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Running osprey


class Machine:
    """What this node offers and how to start ranks on it."""

    def __init__(self, args):
        self.osprey = args.osprey
        if not os.access(self.osprey, os.X_OK):
            raise StudyError(f"no osprey binary at {self.osprey} (build first, or --osprey)")
        self.version = subprocess.run([self.osprey, "--version"], capture_output=True,
                                      text=True, check=True).stdout.strip()
        self.cpus = sorted(os.sched_getaffinity(0))
        self.cores = len(self.cpus)
        self.cpu_model = cpu_model()
        self.launcher = shlex.split(args.launcher)
        self.has_mpi = "mpi=on" in self.version and shutil.which(self.launcher[0]) is not None
        self.open_mpi = self.has_mpi and "Open MPI" in subprocess.run(
            [self.launcher[0], "--version"], capture_output=True, text=True).stdout
        self.gpus = count_gpus() if "cuda=on" in self.version else 0

    def launch(self, ranks, threads):
        """The command prefix that starts `ranks` processes of `threads` threads each."""
        if ranks == 1:
            return []
        if not self.has_mpi:
            raise StudyError("this osprey has no MPI (or no launcher): multi-rank runs skipped")
        prefix = list(self.launcher)
        if self.open_mpi and os.path.basename(self.launcher[0]) in ("mpirun", "mpiexec"):
            if ranks * threads > self.cores:
                prefix.append("--oversubscribe")
            # Open MPI binds each rank to one core by default: wrong for threaded ranks.
            if threads > 1 or ranks * threads > self.cores:
                prefix += ["--bind-to", "none"]
        return prefix + ["-n", str(ranks)]

    def describe(self):
        return (f"{self.cpu_model}, {self.cores} cores available, {self.gpus} GPU(s); "
                f"{self.version}")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def count_gpus():
    if shutil.which("nvidia-smi") is None:
        return 0
    out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


class Run:
    """One `osprey train` (possibly under the launcher), started now and waited for later."""

    def __init__(self, machine, runs_dir, name, settings, ranks=1, threads=1, cpus=None):
        self.name, self.ranks, self.threads = name, ranks, threads
        self.folder = os.path.join(runs_dir, name)
        if os.path.exists(self.folder):
            shutil.rmtree(self.folder)
        sets = dict(settings, name=name, runs_dir=runs_dir, threads=threads, progress=False,
                    plot=False)
        cmd = machine.launch(ranks, threads) + [machine.osprey, "train"]
        for key, value in sets.items():
            cmd += ["--set", f"{key}={json.dumps(value) if not isinstance(value, str) else value}"]
        self.command = cmd
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        if os.geteuid() == 0:  # Open MPI's launcher refuses root unless told
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        self.log_path = os.path.join(runs_dir, name + ".log")
        os.makedirs(runs_dir, exist_ok=True)
        self.log = open(self.log_path, "w")
        pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
        self.start = time.monotonic()
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=pin)

    def wait(self):
        """Waits; returns the run's figures. Peak RSS is the largest process of the run."""
        _, status, usage = os.wait4(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - self.start
        self.log.close()
        if self.process.returncode != 0:
            with open(self.log_path) as f:
                tail = "".join(f.readlines()[-5:])
            raise StudyError(f"run {self.name} exited {self.process.returncode}: "
                             f"{shlex.join(self.command)}\n{tail}")
        epochs = read_metrics(os.path.join(self.folder, "metrics.jsonl"))
        with open(os.path.join(self.folder, "config.json")) as f:
            world = json.load(f)["provenance"]["world_size"]
        if world != self.ranks:
            raise StudyError(f"run {self.name} reports world size {world}, not {self.ranks} "
                             "(a launcher that does not match the MPI library?)")
        with open(self.log_path) as f:
            sizes = re.search(r"\((\d+) train / \d+ test images", f.read())
        if not sizes:
            raise StudyError(f"run {self.name}: no training set size in {self.log_path}")
        last = epochs[-1]
        return {
            "train_images": int(sizes.group(1)) * len(epochs),
            "epochs": len(epochs),
            "epoch_s": sum(e["seconds"] for e in epochs) / len(epochs),
            "total_s": wall,
            "images_per_s": sum(e["images_per_s"] for e in epochs) / len(epochs),
            "test_acc": last["test_acc"],
            "best_acc": max(e["test_acc"] for e in epochs),
            "train_loss": last["train_loss"],
            "peak_rss_mb": usage.ru_maxrss / 1024.0,
        }


def read_metrics(path):
    with open(path) as f:
        epochs = [json.loads(line) for line in f if line.strip()]
    if not epochs:
        raise StudyError(f"{path} holds no epoch")
    return epochs


def train(machine, runs_dir, name, settings, ranks=1, threads=1):
    print(f"  {name}: {ranks} rank(s) x {threads} thread(s)", file=sys.stderr, flush=True)
    return Run(machine, runs_dir, name, settings, ranks, threads).wait()


# ---------------------------------------------------------------------------------------------
# Output: CSV, Markdown, gnuplot


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def write_tables(folder, stem, title, rows, columns, machine, command, extra=()):
    """stem.csv (every column, full precision) and table.md (the same, readable); each
    (stem, caption, rows, columns) of extra gets its own CSV and follows in table.md."""
    md = [f"## {title}", "", f"Machine: {machine.describe()}", "",
          f"Command: `{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    for i, (name, caption, table, cols) in enumerate([(stem, "", rows, columns), *extra]):
        lines = [",".join(cols)] + [",".join(str(r.get(c, "")) for c in cols) for r in table]
        write_atomic(os.path.join(folder, name + ".csv"), "\n".join(lines) + "\n")
        if i:
            md += ["", caption, ""]
        md += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        md += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in table]
    write_atomic(os.path.join(folder, "table.md"), "\n".join(md) + "\n")


def gnuplot(folder, png, script):
    """Draws png in folder; the script's data files are relative to folder."""
    if shutil.which("gnuplot") is None:
        raise StudyError("gnuplot not found (tools/install_deps.sh installs gnuplot-nox)")
    head = (f'set terminal pngcairo size 1000,560 noenhanced font ",11"\n'
            f'set output "{png}.tmp"\nset datafile separator ","\nset grid\n')
    subprocess.run(["gnuplot"], input=head + script, text=True, cwd=folder, check=True)
    os.replace(os.path.join(folder, png + ".tmp"), os.path.join(folder, png))
