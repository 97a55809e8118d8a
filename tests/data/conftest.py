"""Fixtures for the data-layer tests: the shared real corpora, skipped when absent."""

from pathlib import Path

import pytest

SHARED_DATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data").resolve()


def _shared(sub: str) -> Path:
    path = SHARED_DATA / sub
    if not path.is_dir():
        pytest.skip(f"shared corpus folder {path} not present (real-data test)")
    return path


@pytest.fixture
def ptb_dir() -> Path:
    """../shared/data/ptb (skips if missing)."""
    return _shared("ptb")


@pytest.fixture
def shakespeare_dir() -> Path:
    """../shared/data/tinyshakespeare (skips if missing)."""
    return _shared("tinyshakespeare")
