"""The predictor through the Python API against the PyTorch reference's outputs (the
fixtures ruac-core's parity tests use), for every checkpoint format the trainer loads."""

import math

import numpy as np
import pytest
from safetensors.numpy import save_file

import ruac
from conftest import fixture, load_io, lite_medsam_weights, max_abs

TOL = 1e-4


def sam2_micro():
    return ruac.Predictor.from_checkpoint(fixture("sam2.1_micro.pt"), image_size=128)


def cases(io):
    return sorted({int(k.split(".")[0][4:]) for k in io if k.startswith("case")})


def test_sam2_pt_matches_reference_for_every_prompt_kind(sam2_io):
    p = sam2_micro()
    assert (p.model_name, p.family, p.has_ruac_head, p.image_size, p.low_res_size) == ("micro", "sam2", False, 128, 32)
    assert not p.is_image_set and p.orig_hw is None
    p.set_image(sam2_io["image"])
    assert p.is_image_set and p.orig_hw == (96, 150)
    kinds = set()
    for case in cases(sam2_io):
        key = lambda k: f"case{case}.{k}"
        kw = dict(multimask_output=bool(sam2_io[key("multimask")] > 0.5), return_logits=True, uncertainty="analytic")
        if key("point_coords") in sam2_io:
            kw.update(point_coords=sam2_io[key("point_coords")], point_labels=sam2_io[key("point_labels")])
            kinds.add("points")
        if key("box") in sam2_io:
            kw["box"] = sam2_io[key("box")]
            kinds.add("box")
        if key("mask_input") in sam2_io:
            kw["mask_input"] = sam2_io[key("mask_input")][0]  # (1, L, L), as SAM2ImagePredictor takes it
            kinds.add("mask")
        out = p.predict(**kw)
        masks, iou, low_res, unc = out  # unpacks like SAM2ImagePredictor's tuple, plus the uncertainty
        c = 3 if kw["multimask_output"] else 1
        assert masks.shape == (c, 96, 150) and masks.dtype == np.float32
        assert iou.shape == (c,) and low_res.shape == (c, 32, 32) and unc.shape == (c, 96, 150)
        ref_low = np.clip(sam2_io[key("low_res_masks")][0], -32, 32)
        assert max_abs(low_res, ref_low) <= TOL, key("low_res_masks")
        assert max_abs(iou, sam2_io[key("iou")][0]) <= TOL, key("iou")
        assert abs(out.object_score_logit - float(sam2_io[key("obj_score")].ravel()[0])) <= TOL
        if key("masks") in sam2_io:
            ref = sam2_io[key("masks")]
            assert max_abs(masks, ref) <= TOL, key("masks")
            # 0/1 masks by default (SAM2ImagePredictor's `masks > mask_threshold`)
            binary = p.predict(**{**kw, "return_logits": False}).masks
            assert set(np.unique(binary)) <= {0.0, 1.0}
            sure = np.abs(ref) > 1e-3
            assert np.array_equal(binary[sure], (ref[sure] > 0).astype(np.float32))
        # plain SAM 2.1: the entropy of its own probability, normalised in analytic mode
        assert out.uncertainty_mode == "sam_sigmoid_entropy"
        assert unc.min() >= 0.0 and unc.max() <= 1.0
    assert kinds == {"points", "box", "mask"}


def ruac_checkpoint(tmp_path):
    """A RUAC checkpoint as released: the SAM 2.1 tensors plus the Bayesian head, written as
    safetensors from the committed .pt base and head (read back through the Python API)."""
    tensors = ruac.load_state_dict(fixture("sam2.1_micro.pt"))
    tensors.update(ruac.load_state_dict(fixture("ruac_micro_head.safetensors")))
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    return path


def test_ruac_safetensors_matches_reference_head(tmp_path, sam2_io):
    io = load_io("ruac_micro_io.safetensors")
    p = ruac.Predictor.from_checkpoint(str(ruac_checkpoint(tmp_path)), image_size=128)
    assert p.has_ruac_head and p.family == "sam2"
    p.set_image(sam2_io["image"])
    out = p.predict(point_coords=np.array([[52.0, 40.0]]), point_labels=np.array([1]), uncertainty="analytic")
    assert out.mask_tokens == [1, 2, 3] and out.uncertainty_mode == "analytic"
    assert max_abs(out.low_res_masks, io["case0.low_res_masks"][0]) <= TOL
    assert max_abs(out.iou_predictions, io["case0.iou"][0]) <= TOL
    # mask j carries the uncertainty of token j + 1 (the release's channel alignment)
    assert max_abs(out.uncertainty_low_res, io["analytic"][0, 1:4]) <= TOL
    assert out.uncertainty.shape == (3, 96, 150) and out.best == int(np.argmax(out.iou_predictions))

    # Monte Carlo (the default): in [0, ln 2], reproducible for a seed, not for another.
    a = p.predict(point_coords=[[52, 40]], point_labels=[1], seed=7)
    b = p.predict(point_coords=[[52, 40]], point_labels=[1], seed=7)
    c = p.predict(point_coords=[[52, 40]], point_labels=[1], seed=8)
    assert a.uncertainty_mode == "monte_carlo" and math.isclose(a.uncertainty_max, math.log(2), rel_tol=1e-6)
    assert np.array_equal(a.uncertainty, b.uncertainty)
    assert max_abs(a.uncertainty, c.uncertainty) > 0
    assert a.uncertainty.min() >= 0 and a.uncertainty.max() <= math.log(2) + 1e-6
    # single-mask output is token 0 (no stability fallback for RUAC)
    single = p.predict(point_coords=[[52, 40]], point_labels=[1], multimask_output=False)
    assert single.mask_tokens == [0] and single.masks.shape == (1, 96, 150)


def every2(t):
    return t[:, ::2, ::2]


def test_sam1_safetensors_matches_sam_predictor():
    io = load_io("sam1_predictor_io.safetensors")
    p = ruac.Predictor.from_checkpoint(fixture("sam1_tiny_vit.safetensors"))
    assert (p.model_name, p.family, p.image_size) == ("vit_tiny", "sam1", 64)
    p.set_image(io["vitp.image"])
    for case in (0, 1):
        key = lambda k: f"vitp.case{case}.{k}"
        box = io.get(key("box"))
        out = p.predict(io[key("points")], io[key("labels")], box, multimask_output=case == 0, return_logits=True)
        c = 3 if case == 0 else 1
        assert out.masks.shape == (c, 90, 130)
        assert max_abs(out.iou_predictions, io[key("iou")]) <= TOL
        assert max_abs(out.low_res_masks, np.clip(io[key("low_res")], -32, 32)) <= TOL
        assert max_abs(every2(out.masks), io[key("masks_sub")]) <= TOL
        assert math.isinf(out.object_score_logit)


def test_sam1_pth_lite_medsam_matches_its_inference():
    weights = lite_medsam_weights()
    if not weights.is_file():
        if "RUAC_REQUIRE_LITE_MEDSAM" in __import__("os").environ:
            pytest.fail(f"LiteMedSAM weights missing at {weights}: run `make weights`")
        pytest.skip("LiteMedSAM weights absent: `make weights` downloads them")
    io = load_io("sam1_predictor_io.safetensors")
    p = ruac.Predictor.from_checkpoint(weights)
    assert (p.model_name, p.family, p.has_ruac_head) == ("lite_medsam", "sam1", False)
    gray = io["lite.image"]
    p.set_image(np.repeat(gray[:, :, None], 3, axis=2))
    out = p.predict(box=io["lite.box"], multimask_output=False, return_logits=True)
    assert out.masks.shape == (1,) + gray.shape and out.mask_tokens == [0]
    assert max_abs(out.iou_predictions, io["lite.iou"][:1]) <= 1e-3
    assert max_abs(out.low_res_masks[0, ::4, ::4], np.clip(io["lite.low_res_sub"], -32, 32)) <= 1e-3
    assert max_abs(out.masks[0, ::2, ::2], io["lite.masks_sub"]) <= 1e-3


def test_load_state_dict_reads_pt_and_safetensors():
    pt = ruac.load_state_dict(fixture("sam2.1_micro.pt"))
    st = load_io("sam1_tiny_vit.safetensors")
    ours = ruac.load_state_dict(fixture("sam1_tiny_vit.safetensors"))
    assert set(ours) == set(st)
    for k, v in st.items():
        assert ours[k].shape == v.shape and np.array_equal(ours[k], v.astype(ours[k].dtype)), k
    assert "image_encoder.trunk.patch_embed.proj.weight" in pt
    assert all(v.dtype in (np.float32, np.float64, np.uint8, np.uint32, np.int64) for v in pt.values())
