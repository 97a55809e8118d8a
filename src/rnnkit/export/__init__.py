"""Shipping a trained model: ``rnnkit export RUN --format onnx|pt2 --out FILE``.

Every task's model becomes plain functions of tensors (:mod:`.programs`): the language model and the captioner's
decoder one step at a time with their state, the classifier over a padded batch with lengths, the translator as
its encoder and its decoder step; batch and sequence lengths stay dynamic. They are written as ONNX files
(rnnkit's recurrent operator becomes ONNX's own RNN/LSTM/GRU, :mod:`.onnx_ops`) or as torch.export programs
(:mod:`.formats`), with the tokenizers and a JSON sidecar that say how to use them without rnnkit
(:mod:`.sidecar`), and checked against rnnkit's own outputs (:mod:`.run`).

ONNX needs the ``export`` extra: ``pip install 'rnnkit[export]'`` (onnx, onnxscript, onnxruntime).
"""
from .errors import ExportError, OnnxNotSupported, ProjectionNotSupported
from .formats import FORMATS, export_program, onnx_unsupported, run_file
from .programs import Bundle, Loop, Port, Program
from .run import TOLERANCE, ExportResult, bundle_of, export_run

__all__ = ["FORMATS", "ExportError", "OnnxNotSupported", "ProjectionNotSupported", "ExportResult", "export_run",
           "export_program", "bundle_of", "run_file", "onnx_unsupported", "Bundle", "Program", "Port", "Loop",
           "TOLERANCE"]
