"""Exporting a trained run folder: its task's programs, its tokenizers and the sidecar, next to one file name.

``--out DIR/NAME.onnx`` (or ``.pt2``) writes, for a run with one program (language model, classifier),
``NAME.onnx`` itself; for a run with two (translator, captioner) ``NAME.encoder.onnx`` and ``NAME.decoder.onnx``.
Beside them: ``NAME.onnx.json`` (the sidecar, :mod:`.sidecar`; ``NAME.pt2.json`` for pt2, so both formats can
share a name) and the tokenizers, ``NAME.tokenizer.json`` (``NAME.source-tokenizer.json`` and
``NAME.target-tokenizer.json`` for a translator).

The programs are written under temporary names, each run on a new batch of other sizes and compared with
rnnkit's own outputs (onnxruntime for ONNX; skipped, and said so, when it is not installed), and renamed
together when all are good: a failed export leaves what was there. The sidecar comes last.
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..training.atomic import file_mode, write_text
from ..training.checkpoint import CheckpointError, locate_config, read_config
from .formats import FORMATS, ExportError, compare, export_program
from .programs import CHECK_SIZES, EXPORT_SIZES, Bundle
from .sidecar import describe_tokenizer, sidecar

TOLERANCE = 1e-4          # float32: the exported files agree with rnnkit to this (max absolute difference)
TASKS = ("lm", "classify", "seq2seq", "caption")


@dataclass
class ExportResult:
    """What an export wrote and how well the files agree with rnnkit."""

    task: str
    format: str
    programs: dict[str, Path]
    sidecar: Path
    tokenizers: dict[str, Path]
    max_difference: float | None = None      # None: not checked
    notes: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return [*self.programs.values(), self.sidecar, *self.tokenizers.values()]


def bundle_of(run_dir: str | Path) -> Bundle:
    """The exportable programs of the run in ``run_dir``, whatever its task."""
    from .programs import caption_bundle, classifier_bundle, lm_bundle, seq2seq_bundle
    config, where = locate_config(run_dir)
    task = config.get("task")
    if task == "lm":
        from ..tasks.language_modeling import load_run
        model, tokenizer, config = load_run(run_dir)
        return lm_bundle(model, tokenizer, config)
    if task == "classify":
        from ..tasks.classification import load_run
        return classifier_bundle(load_run(run_dir))
    if task == "seq2seq":
        from ..tasks.seq2seq import load_run
        return seq2seq_bundle(*load_run(run_dir))
    if task == "caption":
        from ..tasks.captioning import load_run
        return caption_bundle(*load_run(run_dir))
    raise CheckpointError(f"{where}: a run of task {task!r}, which rnnkit export does "
                          f"not know (it exports {', '.join(TASKS)})")


def format_of(out: str | Path, fmt: str | None) -> str:
    """The format asked for, or the one ``out``'s suffix names."""
    suffix = Path(out).suffix.lstrip(".")
    if fmt is None:
        if suffix not in FORMATS:
            raise ExportError(f"--out {out}: say --format {' or '.join(FORMATS)} (or end the file name in "
                              f".{' or .'.join(FORMATS)})")
        return suffix
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; expected {' or '.join(FORMATS)}")
    if suffix and suffix != fmt:
        raise ExportError(f"--out {out}: a {fmt} file's name ends in .{fmt} (or has no suffix), not .{suffix}")
    return fmt


def output_paths(out: str | Path, fmt: str, programs: list[str], roles: list[str]
                 ) -> tuple[dict[str, Path], Path, dict[str, Path]]:
    """``(program files, sidecar, tokenizer files)`` for ``--out`` (see the module's docstring)."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix == f".{fmt}" else out

    def named(tail: str) -> Path:
        return base.with_name(base.name + tail)
    if len(programs) == 1:
        files = {programs[0]: named(f".{fmt}")}
    else:
        files = {p: named(f".{p}.{fmt}") for p in programs}
    tokenizers = {r: named(".tokenizer.json" if r == "tokenizer" else f".{r}-tokenizer.json") for r in roles}
    return files, named(f".{fmt}.json"), tokenizers


def check_writable(path: Path) -> None:
    """A one-line error now, before a long export, if ``path`` can't be written."""
    if path.is_dir():
        raise ExportError(f"--out {path}: is a folder; give a file name (e.g. {path / 'model'})")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"--out {path}: cannot create the folder {folder} ({e.strerror or e})") from None
    if not folder.is_dir():
        raise ExportError(f"--out {path}: {folder} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".rnnkit-export-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ExportError(f"--out {path}: cannot write in {folder} ({e.strerror or e})") from None


def export_run(run_dir: str | Path, out: str | Path, fmt: str | None = None, check: bool = True) -> ExportResult:
    """Export the run in ``run_dir`` as ``fmt`` (``onnx`` or ``pt2``; None: ``out``'s suffix) to ``out``."""
    fmt = format_of(out, fmt)
    read_config(run_dir)                                      # "not a run" before anything else
    check_writable(Path(out))
    bundle = bundle_of(run_dir)
    roles = list(bundle.tokenizers)
    files, sidecar_path, tokenizer_paths = output_paths(out, fmt, [p.name for p in bundle.programs], roles)
    for name, path in files.items():
        if path.is_dir():
            raise ExportError(f"{path}: is a folder, where the {name} program would be written")
    result = ExportResult(bundle.task, fmt, files, sidecar_path, tokenizer_paths)
    temporary = {name: _temporary(path) for name, path in files.items()}
    try:                              # all programs written and checked under temporary names, then renamed
        for program in bundle.programs:
            export_program(program, fmt, temporary[program.name], EXPORT_SIZES)
        if check:
            _check(bundle, result, temporary)
        for name, tmp in temporary.items():
            os.chmod(tmp, file_mode())           # as open() would make it (mkstemp and the exporters: 0600)
            os.replace(tmp, files[name])
    finally:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)
    for role, path in tokenizer_paths.items():
        _write_json(path, describe_tokenizer(bundle.tokenizers[role], role, caption=bundle.task == "caption"))
    checked = None if result.max_difference is None else {
        "max_abs_difference": result.max_difference, "tolerance": TOLERANCE,
        "sizes": {d: n for d, n in CHECK_SIZES.items() if d in _dims(bundle)}}
    meta = sidecar(bundle, fmt, {n: p.name for n, p in files.items()}, {r: p.name for r, p in tokenizer_paths.items()},
                   str(run_dir), checked)
    _write_json(sidecar_path, meta)
    return result


def _write_json(path: Path, obj) -> None:
    """In the order written (programs in the order they run), readable."""
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def _dims(bundle: Bundle) -> set[str]:
    return {s for p in bundle.programs for port in p.inputs + p.outputs for s in port.shape if isinstance(s, str)}


def _temporary(path: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(name)


def _check(bundle: Bundle, result: ExportResult, paths: dict[str, Path]) -> None:
    """Run every written file on a new batch of other sizes; refuse files that disagree with rnnkit."""
    if result.format == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            result.notes.append("not checked: onnxruntime is not installed (pip install 'rnnkit[export]')")
            return
    worst = 0.0
    for program in bundle.programs:
        worst = max(worst, compare(program, result.format, paths[program.name], CHECK_SIZES))
    if not worst <= TOLERANCE:
        raise ExportError(f"the exported files differ from rnnkit by up to {worst:.3g} (more than {TOLERANCE}); "
                          f"nothing was written")
    result.max_difference = worst


__all__ = ["ExportResult", "export_run", "bundle_of", "format_of", "output_paths", "check_writable", "TOLERANCE"]
