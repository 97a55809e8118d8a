"""What the engine tests share: the compiled extension, built (or loaded) once."""
from __future__ import annotations

import pytest

from rnnkit.engine import fused


@pytest.fixture(scope="module")
def extension():
    """Build (or load) the extension once; skip the module only where no compiler (or ninja) exists.
    Modules that test the compiled loop use it with ``pytestmark = pytest.mark.usefixtures("extension")``."""
    try:
        return fused.build()
    except RuntimeError as err:
        if "no C++ compiler" in str(err) or "ninja is not installed" in str(err):
            pytest.skip(f"the fused engine can't be built on this machine: {err}")
        raise
