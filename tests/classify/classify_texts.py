"""The tiny labelled texts the classify CLI tests train on, and a writer for them as TSV."""
from __future__ import annotations

POS = ["a good film", "good and warm", "truly good", "good fun", "so good", "the cast is good"]
NEG = ["a bad film", "bad and cold", "truly bad", "bad acting", "so bad", "the plot is bad"]


def write_tsv(path, rows, header="sentence\tlabel"):
    path.write_text(header + "\n" + "".join(f"{t} \t{y}\n" for t, y in rows), encoding="utf-8")
    return path
