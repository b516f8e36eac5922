"""The GIL is released while the model runs: another Python thread keeps running."""

import threading
import time

import numpy as np

import ruac
from conftest import REPO


def test_gil_is_released_during_inference():
    # the committed RUAC model: its Monte Carlo uncertainty costs time per draw
    p = ruac.Predictor.from_checkpoint(REPO / "models" / "ruac-micro.safetensors")
    image = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    p.set_image(image)
    span = {}

    def work():  # one long call: many Monte Carlo draws
        span["start"] = time.perf_counter()
        p.predict(point_coords=[[100, 100]], point_labels=[1], mc_samples=1500)
        span["end"] = time.perf_counter()

    t = threading.Thread(target=work)
    stamps = []
    t.start()
    while t.is_alive():
        stamps.append(time.perf_counter())
    t.join()
    inside = [s for s in stamps if span["start"] <= s <= span["end"]]
    duration = span["end"] - span["start"]
    assert duration > 0.1, f"inference too short to tell ({duration:.3f} s)"
    # With the GIL held by the worker, this loop could not run during the call: there would
    # be no stamp inside it, and the one gap would be the whole duration.
    gaps = np.diff([span["start"], *inside, span["end"]])
    assert len(inside) > 100 and gaps.max() < 0.5 * duration, (len(inside), gaps.max(), duration)
