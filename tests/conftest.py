from pathlib import Path

import numpy as np
import pytest

from anomclr_ray.events import layout as L
from anomclr_ray.events.io import EventFile

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / "data" / "default"


@pytest.fixture(scope="session")
def default_data() -> Path:
    return DEFAULT_DATA


@pytest.fixture(scope="session")
def background_sample() -> np.ndarray:
    """2000 real (generated) background events from the shipped default data."""
    with EventFile(DEFAULT_DATA / L.FILE_NAMES[L.BACKGROUND]) as f:
        return f.read(0, 2000)
