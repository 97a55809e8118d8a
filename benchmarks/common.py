"""What the benchmark scripts share: the git state, running the CLI and watching its metrics.jsonl, the
machine line of a report, and appending a report to its log.

The scripts import it as ``from common import ...`` (``python benchmarks/X.py`` puts benchmarks/ first on
sys.path). Importing it puts the checkout's src/ first on sys.path, so the scripts run without an install.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DATA = ROOT.parent / "shared" / "data"
PIPE = subprocess.PIPE
sys.path.insert(0, str(ROOT / "src"))

Stream = IO[str] | int | None


def git(*args: str) -> str:
    """The output of ``git ARGS`` in the repository, stripped; "unknown" where git fails."""
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def head() -> str:
    """The short hash of HEAD."""
    return git("rev-parse", "--short", "HEAD")


def dirty() -> bool:
    """Whether the working tree has uncommitted changes (True where git can't tell)."""
    return bool(git("status", "--porcelain"))


def commit() -> str:
    """The short hash of HEAD, with " (+ uncommitted changes)" when the working tree has any."""
    return head() + (" (+ uncommitted changes)" if dirty() else "")


def records(path: Path, kind: str = "eval") -> list[dict]:
    """The records of one kind (``eval``, ``train``) in a metrics.jsonl; a line that isn't JSON (one being
    written) is skipped."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:      # a line being written
            continue
        if record.get("kind") == kind:
            out.append(record)
    return out


def medians(runs: dict, rounds: int = 40) -> dict:
    """Milliseconds per call of each function in ``runs``: two warm-up calls each, then the median of interleaved
    rounds (every function once per round, in order, so that load from other processes hits all alike)."""
    for _ in range(2):
        for f in runs.values():
            f()
    times = {k: [] for k in runs}
    for _ in range(rounds):
        for k, f in runs.items():
            start = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def engine_build(csrc: Path, flags: list[str]):
    """rnnkit's C++ engine built from the sources in ``csrc`` with ``flags`` (cached under both), loadable beside
    the one rnnkit uses, for the A/B scripts: ``engine_ab.py --variant-flags`` (this checkout's sources, other
    flags) and ``regularised_ab.py --baseline`` (another checkout's sources, this build's flags)."""
    from torch.utils import cpp_extension

    from rnnkit.engine import build
    name = build._name(flags, csrc).replace("rnnkit_fused_", "rnnkit_ab_")
    return cpp_extension.load(name, [str(p) for p in sorted(csrc.glob("*.cpp"))], extra_cflags=flags,
                              extra_ldflags=["-fopenmp"], build_directory=build._build_dir(name))


def cli_command(*args: str) -> list[str]:
    """``python -m rnnkit.cli.main ARGS`` with this interpreter."""
    return [sys.executable, "-m", "rnnkit.cli.main", *args]


def cli_env() -> dict[str, str]:
    """This environment with the checkout's src/ first on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def parser(doc: str | None, minutes: float | None = None,
           budget: str = "training time budget") -> argparse.ArgumentParser:
    """A script's parser: ``doc`` as it is written, and ``--minutes`` where a default is given."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if minutes is not None:
        p.add_argument("--minutes", type=float, default=minutes, help=f"{budget} (default: %(default)s)")
    return p


def add_run_options(p: argparse.ArgumentParser, name: str, task: str) -> None:
    """``--out``, ``--log`` and the options after -- for ``rnnkit train TASK``."""
    p.add_argument("--out", type=Path, default=None, help=f"run folder (default: runs/{name}-bench-<time>)")
    p.add_argument("--log", type=Path, default=None,
                   help=f"report file (default: benchmarks/results/{name}-<date>.log, appended)")
    p.add_argument("cli_args", nargs="*", help=f"extra options for `rnnkit train {task}` (after --)")


def run_paths(name: str, out: Path | None, log: Path | None) -> tuple[dt.datetime, Path, Path]:
    """Now, the run folder (``out`` or runs/NAME-bench-<time>) and the report file (``log`` or
    benchmarks/results/NAME-<date>.log)."""
    now = dt.datetime.now()
    return (now, out or ROOT / "runs" / f"{name}-bench-{now:%Y%m%d-%H%M%S}",
            log or RESULTS / f"{name}-{now:%Y-%m-%d}.log")


def missing(path: Path, name: str) -> bool:
    """Whether an input file is missing (then says so on stderr)."""
    if path.is_file():
        return False
    print(f"{name} benchmark: {path} not found", file=sys.stderr)
    return True


class Watch:
    """Wall-clock time, this process's CPU time and the load average, from its creation to :meth:`stop`."""

    def __init__(self) -> None:
        self.load_start = self.load_end = os.getloadavg()
        self._wall0, self._cpu0 = time.monotonic(), time.process_time()
        self.wall = self.cpu = 0.0

    def elapsed(self) -> float:
        """Seconds since the start."""
        return time.monotonic() - self._wall0

    def stop(self) -> None:
        """Reads the times and the load average at the end."""
        self.wall, self.cpu = self.elapsed(), time.process_time() - self._cpu0
        self.load_end = os.getloadavg()


class Run(Watch):
    """A finished run of the CLI: :class:`Watch`'s readings, the exit code, the captured output, and the eval
    records with the seconds since the start at which each step appeared (the end for those seen only then)."""

    def __init__(self) -> None:
        super().__init__()
        self.returncode = 0
        self.stdout = self.stderr = ""
        self.evals: list[dict] = []
        self.seen: dict[int, float] = {}


def run_cli(cmd: list[str], metrics: Path | None = None, *, stdout: Stream = None, stderr: Stream = None,
            poll: float = 1.0) -> Run:
    """Runs ``cmd`` from the repository root with :func:`cli_env` to its end.

    ``stdout``, ``stderr``: as for :class:`subprocess.Popen`; PIPE keeps the stream in ``Run.stdout`` or
    ``Run.stderr`` (through a temporary file, which can't fill up as a pipe can). With ``metrics`` (the run's
    metrics.jsonl), reads it every ``poll`` seconds to note when each eval step appeared.
    """
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        run = Run()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=cli_env(), text=True, stdout=out if stdout == PIPE else stdout,
                                stderr=err if stderr == PIPE else stderr)
        while metrics is not None and proc.poll() is None:
            for r in records(metrics):
                run.seen.setdefault(r["step"], run.elapsed())
            time.sleep(poll)
        run.returncode = proc.wait()
        run.stop()
        out.seek(0)
        err.seek(0)
        run.stdout, run.stderr = out.read(), err.read()
    if metrics is not None:
        run.evals = records(metrics)
        for r in run.evals:
            run.seen.setdefault(r["step"], run.wall)
    return run


def run_here(cli: list[str], name: str) -> Run:
    """``rnnkit CLI`` in this process, timed (CPU time included); on failure says so on stderr."""
    from rnnkit.cli.main import main

    run = Run()
    run.returncode = main(cli)
    run.stop()
    if run.returncode != 0:
        print(f"{name} benchmark: training failed (exit {run.returncode})", file=sys.stderr)
    return run


def cpu_name(processor: bool = False) -> str:
    """The machine's architecture, or with ``processor`` its processor's name (``rnnkit bench``'s, from lscpu)."""
    if not processor:
        return platform.machine()
    from rnnkit.bench.cpu import cpu_model
    return cpu_model()


def machine_line(load_start: tuple[float, ...], load_end: tuple[float, ...] | None = None, *, threads: str = "",
                 processor: bool = False, times: str = "times") -> str:
    """``machine: <cpu>, <n> CPUs, torch <version>[, THREADS]; load average at start .., at end ..
    (shared machine: TIMES are pessimistic)``; ``load_end`` defaults to now."""
    import torch

    end = load_end or os.getloadavg()
    return (f"machine: {cpu_name(processor)}, {os.cpu_count()} CPUs, torch {torch.__version__}"
            f"{', ' + threads if threads else ''}; load average at start {load_start[0]:.1f}, at end {end[0]:.1f} "
            f"(shared machine: {times} are pessimistic)")


def header(title: str, cmd: list[str], machine: str) -> list[str]:
    """The first lines of a report on a CLI run: the title, the command, the commit and ``machine``."""
    return [f"=== {title} ===", f"command: {' '.join(cmd)}", f"commit: {commit()}", machine]


def here_header(title: str, script: str, argv: list[str] | None, cli: list[str], train: Watch,
                threads: int) -> list[str]:
    """The first lines of a report on training in this process: the title with the commit, this script's
    command line, the CLI's, and the machine line (load average from the start of ``train`` to now)."""
    return [f"=== {title} (git {head()}) ===",
            f"command: python benchmarks/{script} {' '.join(argv if argv is not None else sys.argv[1:])}",
            f"cli: rnnkit {' '.join(cli)}",
            machine_line(train.load_start, threads=f"{threads} threads", processor=True, times="wall-clock times")]


def save_report(log: Path, lines: list[str], *, echo: bool = True, record: dict[str, Any] | None = None) -> None:
    """Appends the lines and a blank line to ``log`` (and ``record`` as a JSON line to ``log`` with the suffix
    .jsonl), then writes them to stdout too where ``echo``."""
    report = "\n".join(lines) + "\n\n"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(report)
    if record is not None:
        with open(log.with_suffix(".jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
    if echo:
        sys.stdout.write(report)
        sys.stdout.flush()
