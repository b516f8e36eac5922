"""Shared fixtures of the Python tests: the committed reference tensors of ruac-core's
parity tests (written by the PyTorch reference code, tools/make_*_fixtures.py)."""

import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "crates" / "ruac-core" / "tests" / "fixtures"


def fixture(name: str) -> Path:
    return FIXTURES / name


def load_io(name: str) -> dict:
    return load_file(str(fixture(name)))


def max_abs(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    assert a.shape == b.shape, f"shape {a.shape} vs {b.shape}"
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def lite_medsam_weights() -> Path:
    """LiteMedSAM's real weights (`make weights`), as ruac-core's LiteMedSAM test finds them."""
    return Path(os.environ.get("RUAC_LITE_MEDSAM", REPO / "target" / "weights" / "lite_medsam.pth"))


@pytest.fixture(scope="session")
def sam2_io():
    return load_io("sam2.1_micro_io.safetensors")
