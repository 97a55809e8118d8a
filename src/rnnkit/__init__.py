"""rnnkit: recurrent neural networks from the lecture's equations, with hand-written BPTT, on PyTorch."""
__version__ = "0.1.0"
