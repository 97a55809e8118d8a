"""Tasks: data, model and loss put together for the shared trainer, one module per application."""
