"""Looking inside recurrent networks: gradient flow through time, long-range memory experiments, and a
self-contained HTML report of what a trained network's units respond to."""
