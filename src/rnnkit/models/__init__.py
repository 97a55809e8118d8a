"""The networks of the four applications, each a thin composition of rnnkit layers; ``config.py`` the
settings they share."""
