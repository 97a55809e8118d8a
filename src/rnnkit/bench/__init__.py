"""Speed and memory of rnnkit's engines against torch.nn, serving ``rnnkit bench``.

:mod:`.timing` holds the contenders and the interleaved rounds, :mod:`.memory` the peak-memory rows (measured in
a fresh process), :mod:`.generation` the per-token generation step, :mod:`.cpu` and :mod:`.cuda` the two reports
and :mod:`.report` the options and the dispatch between them.
"""
