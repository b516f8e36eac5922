"""Bad input raises the documented exception with ruac-core's message: ValueError for bad
values and unusable files, TypeError for wrong types, OSError subclasses for files that
cannot be read, RuntimeError for predict before set_image."""

import numpy as np
import pytest

import ruac
from ruac import metrics
from conftest import fixture


@pytest.fixture(scope="module")
def predictor():
    return ruac.Predictor.from_checkpoint(fixture("sam2.1_micro.pt"), image_size=128)


@pytest.fixture(scope="module")
def ready(predictor):
    predictor.set_image(np.full((40, 60, 3), 128, dtype=np.uint8))
    return predictor


def test_checkpoint_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no-such.pt"):
        ruac.Predictor.from_checkpoint(tmp_path / "no-such.pt")
    with pytest.raises(IsADirectoryError):
        ruac.Predictor.from_checkpoint(tmp_path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        ruac.Predictor.from_checkpoint(junk)
    short = tmp_path / "short.pt"
    short.write_bytes(b"PK")
    with pytest.raises(ValueError, match="only 2 bytes"):
        ruac.Predictor.from_checkpoint(short)
    # a SAM 1 file is not a SAM 2.1 configuration, and unknown names are refused
    with pytest.raises(ValueError, match="configuration"):
        ruac.Predictor.from_checkpoint(fixture("sam2.1_micro.pt"), config="no_such_config")
    with pytest.raises(FileNotFoundError):
        ruac.load_state_dict(tmp_path / "missing.pth")


def test_predict_before_set_image(predictor):
    fresh = ruac.Predictor.from_checkpoint(fixture("sam2.1_micro.pt"), image_size=128)
    with pytest.raises(RuntimeError, match="set_image"):
        fresh.predict(point_coords=[[1, 1]], point_labels=[1])


def test_bad_images(predictor):
    with pytest.raises(TypeError, match="uint8"):
        predictor.set_image(np.zeros((10, 10, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        predictor.set_image(np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        predictor.set_image(np.zeros((10, 10, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="0x10"):
        predictor.set_image(np.zeros((10, 0, 3), dtype=np.uint8))


def test_bad_prompts(ready):
    with pytest.raises(ValueError, match="no prompt"):
        ready.predict()
    with pytest.raises(ValueError, match="outside the 60x40 image"):
        ready.predict(point_coords=[[70, 10]], point_labels=[1])
    with pytest.raises(ValueError, match="not a finite"):
        ready.predict(point_coords=[[np.nan, 10]], point_labels=[1])
    with pytest.raises(ValueError, match="point_labels must be supplied"):
        ready.predict(point_coords=[[10, 10]])
    with pytest.raises(ValueError, match=r"shape \(1,\)"):
        ready.predict(point_coords=[[10, 10]], point_labels=[1, 0])
    with pytest.raises(ValueError, match="1 \\(foreground\\) or 0"):
        ready.predict(point_coords=[[10, 10]], point_labels=[2])
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        ready.predict(point_coords=[10, 10, 1], point_labels=[1])
    with pytest.raises(ValueError, match="empty"):
        ready.predict(box=[30, 10, 20, 30])
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        ready.predict(box=[[0, 0, 10, 10], [5, 5, 20, 20]])
    with pytest.raises(ValueError, match=r"expected \[1, 1, 32, 32\]"):
        ready.predict(mask_input=np.zeros((1, 16, 16), dtype=np.float32))
    with pytest.raises(ValueError, match="could not convert|cannot convert"):
        ready.predict(point_coords=[["a", "b"]], point_labels=[1])
    with pytest.raises(ValueError, match='"mc" or "analytic"'):
        ready.predict(point_coords=[[10, 10]], point_labels=[1], uncertainty="bayes")
    with pytest.raises(ValueError, match="mc_samples"):
        ready.predict(point_coords=[[10, 10]], point_labels=[1], mc_samples=0)
    with pytest.raises(TypeError):
        ready.predict(point_coords=[[10, 10]], point_labels=[1], normalize_coords=False)
    # the predictor still works after errors
    assert ready.predict(point_coords=[[10, 10]], point_labels=[1]).masks.shape == (3, 40, 60)


def test_bad_metric_input():
    ok = np.zeros((4, 5), dtype=np.float32)
    with pytest.raises(ValueError, match="not a probability"):
        metrics.evaluate_object(ok + 2, ok, ok > 0)
    with pytest.raises(ValueError, match="shape"):
        metrics.evaluate_object(ok, np.zeros((5, 4)), ok > 0)
    with pytest.raises(ValueError, match="2-D"):
        metrics.evaluate_object(ok.ravel(), ok.ravel(), ok.ravel() > 0)
    with pytest.raises(ValueError, match="not finite"):
        metrics.auroc(np.array([0.1, np.inf]), np.array([True, False]))
    with pytest.raises(ValueError, match="unknown key \"ece_bin\""):
        metrics.evaluate_object(ok, ok, ok > 0, config={"ece_bin": 10})
    with pytest.raises(ValueError, match="config.pavpu: unknown key"):
        metrics.evaluate_object(ok, ok, ok > 0, config={"pavpu": {"patch": 8}})
    with pytest.raises(ValueError, match="ece_bins"):
        metrics.evaluate_object(ok, ok, ok > 0, config={"ece_bins": 0})
    with pytest.raises(ValueError, match="shape"):
        metrics.iou(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="shape"):
        metrics.wilcoxon([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="confidence"):
        metrics.bootstrap_mean_ci([1.0, 2.0], confidence=1.5)
    # undefined values are None, not errors
    assert metrics.auroc(np.array([0.1, 0.2]), np.array([False, False])) is None
    assert metrics.pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None
