#!/usr/bin/env python3
"""Generate SAM 2.1 reference fixtures for the Rust port (crates/ruac-core).

Run from the repository root with the venv described in tools/README.md:

    $VENV/bin/python tools/make_sam2_fixtures.py

Outputs (in crates/ruac-core/tests/fixtures/):

* sam2.1_shapes.json          state_dict name -> shape for the four official
                              SAM 2.1 configs (tiny/small/base_plus/large),
                              i.e. the key set of the official checkpoints.
* sam2.1_micro.pt             a tiny randomly initialised SAM 2.1 model in the
                              official checkpoint layout ({"model": state_dict}).
* sam2.1_micro_io.safetensors reference inputs / intermediates / outputs of the
                              official sam2 code path (SAM2ImagePredictor).

Everything is deterministic (seeded generator, single thread), so re-running
the script must reproduce the committed files byte for byte.
"""

from __future__ import annotations

import json
import random
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from hydra.utils import instantiate
from omegaconf import OmegaConf
from safetensors.torch import save_file

# Importing sam2 initialises hydra with the package's own config module, which
# is what build_sam2() needs to resolve "configs/sam2.1/*.yaml".
import sam2  # noqa: F401
from sam2.build_sam import build_sam2
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.transformer import TwoWayTransformer
from sam2.modeling.sam2_utils import LayerNorm2d
from sam2.sam2_image_predictor import SAM2ImagePredictor

# SAM2Transforms wraps Resize/Normalize in torch.jit.script, which recent torch
# flags as deprecated; the result is unaffected, so keep the log readable.
warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "crates" / "ruac-core" / "tests" / "fixtures"
MICRO_CFG = REPO / "tools" / "configs" / "sam2.1_micro.yaml"

OFFICIAL_CONFIGS = {
    "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}

SEED = 20250101
SIZE_BUDGET_BYTES = 4_800_000  # leaves room for the RUAC head fixtures in 5 MB

# Randomisation scales (see randomise_()).
# weight std = WEIGHT_GAIN * extra / sqrt(fan_in). A gain of 0.5 shrinks the
# signal at every layer: mask logits ended up within +-0.3, so every
# single-mask output was "unstable" (stability score ~0.3 with the +-0.05 band)
# and the tests would compare near-zero numbers. Gain 1.0 keeps activations
# O(1) through the trunk/neck (|x| < 10).
WEIGHT_GAIN = 1.0
# Extra gain for the decoder heads (prefix match on state_dict keys), chosen
# so that mask logits span roughly +-20 (below the predictor's +-32 clamp, so
# the clamp is a no-op), IoU predictions spread over ~0.4..0.86 and, among
# the multimask=False cases, the dynamic multimask fallback fires for some
# and not for others.
GAIN_OVERRIDES = {
    "sam_mask_decoder.output_hypernetworks_mlps.": 1.5,
    "sam_mask_decoder.pred_obj_score_head.": 1.5,
    "sam_mask_decoder.iou_prediction_head.": 1.3,
}
BIAS_STD = 0.1
EMBED_STD = 0.1
NORM_SCALE_STD = 0.1  # LayerNorm weight = 1 + N(0, NORM_SCALE_STD)

# Test image size (deliberately non-square and not a multiple of 16).
IMG_H, IMG_W = 96, 150


def seed_everything() -> None:
    # One thread: reductions are then evaluated in a fixed order, which is what
    # makes the outputs bit-reproducible between runs.
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)


# --------------------------------------------------------------------------
# 1. Official state_dict shapes
# --------------------------------------------------------------------------


def official_shapes() -> dict:
    """Build each official SAM 2.1 model without a checkpoint and list its
    state_dict. load_state_dict() in build_sam.py is strict, so these names are
    exactly the keys under "model" in the official sam2.1_hiera_*.pt files."""
    out = {}
    for name, cfg in OFFICIAL_CONFIGS.items():
        model = build_sam2(cfg, ckpt_path=None, device="cpu")
        out[name] = {k: list(v.shape) for k, v in model.state_dict().items()}
        print(f"  {name}: {len(out[name])} tensors, "
              f"{sum(v.numel() for v in model.state_dict().values()):,} values")
        del model
    return out


# --------------------------------------------------------------------------
# 2. Micro model
# --------------------------------------------------------------------------


def build_micro_model() -> nn.Module:
    # The micro yaml is loaded directly (not via hydra's search path, which is
    # bound to the sam2 package). It already carries the
    # sam_mask_decoder_extra_args that build_sam2(apply_postprocessing=True)
    # would inject as overrides.
    cfg = OmegaConf.load(MICRO_CFG)
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model, _recursive_=True)

    # SAM2Base._build_sam_heads hard-codes TwoWayTransformer(mlp_dim=2048),
    # which would dominate the micro model's size. Rebuild the decoder with the
    # very same arguments except for the transformer. Attribute names (and
    # therefore state_dict keys) are unchanged.
    model.sam_mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(
            depth=2,
            embedding_dim=model.sam_prompt_embed_dim,
            mlp_dim=256,
            num_heads=8,
        ),
        transformer_dim=model.sam_prompt_embed_dim,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
        use_high_res_features=model.use_high_res_features_in_sam,
        iou_prediction_use_sigmoid=model.iou_prediction_use_sigmoid,
        pred_obj_scores=model.pred_obj_scores,
        pred_obj_scores_mlp=model.pred_obj_scores_mlp,
        use_multimask_token_for_obj_ptr=model.use_multimask_token_for_obj_ptr,
        **(model.sam_mask_decoder_extra_args or {}),
    )
    return model


def _fan_in(module: nn.Module, w: torch.Tensor) -> int:
    if isinstance(module, nn.Linear):
        return w.shape[1]
    if isinstance(module, nn.ConvTranspose2d):
        # weight is [in, out/groups, kh, kw]; each output pixel receives
        # in * (kh/sh) * (kw/sw) taps.
        kh, kw = w.shape[2:]
        sh, sw = module.stride
        return max(1, w.shape[0] * kh * kw // (sh * sw))
    if isinstance(module, nn.Conv2d):
        # weight is [out, in/groups, kh, kw] (depthwise convs: in/groups == 1).
        return w.shape[1] * w.shape[2] * w.shape[3]
    raise TypeError(f"no fan-in rule for {type(module).__name__}")


@torch.no_grad()
def randomise_(model: nn.Module, gen: torch.Generator) -> None:
    """Overwrite every tensor of the state_dict with seeded random values.

    The official initialisation leaves many tensors at 0/1 or 1e-6 (biases,
    LayerNorms, CXBlock layer-scale gamma, ...), which would let a port get
    away with ignoring them. Here everything is non-trivial, while scales stay
    small enough for activations to remain well conditioned.

    Tensors are visited in state_dict order with a single generator, so the
    values depend only on SEED and on the module graph.
    """
    sd = model.state_dict()  # tensors share storage with the live parameters
    for key, t in sd.items():
        owner_name, _, leaf = key.rpartition(".")
        owner = model.get_submodule(owner_name) if owner_name else model

        def normal(std: float, mean: float = 0.0) -> torch.Tensor:
            return torch.randn(t.shape, generator=gen, dtype=torch.float32) * std + mean

        if leaf == "positional_encoding_gaussian_matrix":
            # Random Fourier frequencies of the prompt encoder; the official
            # init is N(0, 1). With std 0.1 the encoding would be nearly
            # constant over the image, so keep unit scale.
            new = normal(1.0)
        elif isinstance(owner, (nn.LayerNorm, LayerNorm2d)):
            new = normal(NORM_SCALE_STD, 1.0) if leaf == "weight" else normal(BIAS_STD)
        elif isinstance(owner, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            if leaf == "weight":
                gain = WEIGHT_GAIN
                for prefix, extra in GAIN_OVERRIDES.items():
                    if key.startswith(prefix):
                        gain *= extra
                new = normal(gain / _fan_in(owner, t) ** 0.5)
            else:
                new = normal(BIAS_STD)
        elif leaf == "gamma":
            # CXBlock layer scale (official init 1e-6 => fuser ~ identity).
            new = normal(NORM_SCALE_STD, 1.0)
        else:
            # Embedding tables and free parameters: pos_embed,
            # pos_embed_window, iou/mask/obj-score tokens, point embeddings,
            # not_a_point_embed, no_mask_embed, no_mem_embed, no_mem_pos_enc,
            # maskmem_tpos_enc, no_obj_ptr, no_obj_embed_spatial, ...
            new = normal(EMBED_STD)
        t.copy_(new)


# --------------------------------------------------------------------------
# 3. Reference inputs / outputs
# --------------------------------------------------------------------------


def make_test_image() -> np.ndarray:
    """Deterministic RGB uint8 image [H, W, 3]: smooth gradients plus a few
    flat coloured shapes (so there are both smooth and sharp structures, and
    the anti-aliased resize actually matters)."""
    y, x = np.mgrid[0:IMG_H, 0:IMG_W].astype(np.float64)
    img = np.stack(
        [
            40 + 160 * x / (IMG_W - 1),
            30 + 180 * y / (IMG_H - 1),
            200 - 120 * (x + y) / (IMG_W + IMG_H - 2),
        ],
        axis=-1,
    )
    # red disc
    img[(x - 52) ** 2 + (y - 42) ** 2 <= 17**2] = (220, 30, 40)
    # blue rectangle
    img[(x >= 98) & (x <= 140) & (y >= 12) & (y <= 58)] = (25, 60, 210)
    # yellow triangle (bottom left)
    img[(y >= 62) & (y <= 90) & (x >= 10) & (x - 10 <= (y - 62) * 1.5)] = (235, 220, 30)
    # dark thin diagonal stripe
    img[np.abs((x - 70) - (y - 48) * 0.8) <= 1.5] = (15, 15, 15)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def prompt_cases() -> list[dict]:
    """Point coordinates are in pixels of the ORIGINAL image, (x, y)."""
    return [
        # 0: single positive click on the red disc
        dict(points=[[52.0, 40.0]], labels=[1], box=None, mask="none", multimask=True),
        # 1: positive + negative click
        dict(points=[[52.0, 40.0], [118.0, 30.0]], labels=[1, 0], box=None,
             mask="none", multimask=False),
        # 2: box only
        dict(points=None, labels=None, box=[92.0, 8.0, 146.0, 62.0], mask="none",
             multimask=False),
        # 3: box + negative click
        dict(points=[[30.0, 80.0]], labels=[0], box=[5.0, 55.0, 60.0, 93.0],
             mask="none", multimask=True),
        # 4: positive click + case 0's best low-res logits as mask prompt
        dict(points=[[52.0, 40.0]], labels=[1], box=None, mask="case0_best",
             multimask=False),
        # 5: non-integer click near the top-right border
        dict(points=[[148.625, 1.375]], labels=[1], box=None, mask="none",
             multimask=True),
    ]


@torch.no_grad()
def compute_io(model: nn.Module) -> tuple[dict, dict]:
    """Run the official SAM2ImagePredictor on the micro model and collect
    inputs, intermediates and outputs. Returns (tensors, report)."""
    io: dict[str, torch.Tensor] = {}
    report: dict = {"cases": {}}
    predictor = SAM2ImagePredictor(model)
    # SURPRISE: the predictor hard-codes the backbone feature sizes for a
    # 1024 input ([(256,256),(128,128),(64,64)]) and uses them in a .view();
    # they must follow image_size for any other resolution.
    s = model.image_size
    predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]

    # Capture intermediates with hooks while set_image() runs the real path.
    cap: dict = {}
    enc = model.image_encoder
    hooks = [
        enc.trunk.register_forward_pre_hook(
            lambda m, args: cap.__setitem__("input", args[0].clone())),
        enc.trunk.register_forward_hook(
            lambda m, args, out: cap.__setitem__("trunk", [t.clone() for t in out])),
        # forward_image() overwrites backbone_fpn[0/1] in place with the
        # conv_s0/conv_s1 projections, so copy the list right away.
        enc.register_forward_hook(
            lambda m, args, out: cap.__setitem__(
                "neck", [t.clone() for t in out["backbone_fpn"]])),
    ]
    image = make_test_image()
    predictor.set_image(image)
    for h in hooks:
        h.remove()

    io["image"] = torch.from_numpy(image)
    io["input"] = cap["input"]
    # Sanity: the encoder input is SAM2Transforms(image) (ToTensor, Resize
    # with antialias, Normalize).
    assert torch.equal(cap["input"], predictor._transforms(image)[None])
    assert cap["input"].shape == (1, 3, s, s)
    for i, t in enumerate(cap["trunk"]):
        io[f"trunk.{i}"] = t
    assert len(cap["neck"]) == 3  # scalp=1 drops the lowest-resolution level
    for i, t in enumerate(cap["neck"]):
        io[f"neck.{i}"] = t

    dec = model.sam_mask_decoder
    feat_s0, feat_s1 = predictor._features["high_res_feats"]
    image_embed = predictor._features["image_embed"]
    assert torch.equal(feat_s0, dec.conv_s0(cap["neck"][0]))
    assert torch.equal(feat_s1, dec.conv_s1(cap["neck"][1]))
    # no_mem_embed ([1,1,C]) is added to the lowest-res level only, in the
    # flattened (HW, B, C) layout, inside set_image().
    ref = cap["neck"][2] + model.no_mem_embed.reshape(1, -1, 1, 1)
    assert torch.equal(image_embed, ref)
    io["feat_s0"] = feat_s0
    io["feat_s1"] = feat_s1
    io["image_embed"] = image_embed
    dense_pe = model.sam_prompt_encoder.get_dense_pe()
    io["dense_pe"] = dense_pe

    f32 = np.float32
    for n, case in enumerate(prompt_cases()):
        p = f"case{n}."
        point_coords = None if case["points"] is None else np.array(case["points"], f32)
        point_labels = None if case["labels"] is None else np.array(case["labels"], np.int32)
        box = None if case["box"] is None else np.array(case["box"], f32)
        mask_input = None
        if case["mask"] == "case0_best":
            # What a user does: feed back the best-IoU low-res logits from
            # predict() (these are clamped to [-32, 32] by the predictor).
            best = int(np.argmax(report["cases"][0]["iou_np"]))
            mask_input = report["cases"][0]["low_res_np"][best][None]  # [1, 32, 32]
        mm = case["multimask"]

        # (a) the public API
        masks, ious, low_res = predictor.predict(
            point_coords=point_coords, point_labels=point_labels, box=box,
            mask_input=mask_input, multimask_output=mm, return_logits=True)

        # (b) the same computation spelled out, to expose sparse/dense and the
        # object score. This mirrors SAM2ImagePredictor._prep_prompts/_predict.
        m_in, coords, labels, ubox = predictor._prep_prompts(
            point_coords, point_labels, box, mask_input, normalize_coords=True)
        concat = None if coords is None else (coords, labels)
        if ubox is not None:
            # the box becomes two corner points with labels 2/3, placed BEFORE
            # the click points; boxes=None is then passed to the encoder.
            box_coords = ubox.reshape(-1, 2, 2)
            box_labels = torch.tensor([[2, 3]], dtype=torch.int)
            if concat is not None:
                concat = (torch.cat([box_coords, concat[0]], 1),
                          torch.cat([box_labels, concat[1]], 1))
            else:
                concat = (box_coords, box_labels)
        sparse, dense = model.sam_prompt_encoder(points=concat, boxes=None, masks=m_in)
        lr, iou, _tokens, obj = dec(
            image_embeddings=image_embed, image_pe=dense_pe,
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=mm, repeat_image=False,
            high_res_features=[feat_s0, feat_s1])
        assert torch.equal(lr.clamp(-32.0, 32.0)[0], torch.from_numpy(low_res))
        assert torch.equal(iou[0], torch.from_numpy(ious))
        up = predictor._transforms.postprocess_masks(lr, (IMG_H, IMG_W))
        assert torch.equal(up[0], torch.from_numpy(masks))

        # Did the dynamic multimask fallback (single-mask token unstable ->
        # best multimask token) fire? Only relevant for multimask=False.
        all_masks, all_iou, _, _ = dec.predict_masks(
            image_embeddings=image_embed, image_pe=dense_pe,
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            repeat_image=False, high_res_features=[feat_s0, feat_s1])
        stab = float(dec._get_stability_scores(all_masks[:, 0:1])[0, 0])

        if point_coords is not None:
            io[p + "point_coords"] = torch.from_numpy(point_coords)
            io[p + "point_labels"] = torch.from_numpy(point_labels.astype(f32))
        if box is not None:
            io[p + "box"] = torch.from_numpy(box)
        if m_in is not None:
            io[p + "mask_input"] = m_in  # [1, 1, 32, 32]
        io[p + "multimask"] = torch.tensor(float(mm), dtype=torch.float32)
        io[p + "sparse"] = sparse
        io[p + "dense"] = dense
        io[p + "low_res_masks"] = lr
        io[p + "iou"] = iou
        io[p + "obj_score"] = obj
        # Full-resolution logits only for the first three cases (fixture budget); the
        # others are checked at low resolution, the upsampling being the same code.
        if n < 3:
            io[p + "masks"] = torch.from_numpy(masks)

        report["cases"][n] = dict(
            iou_np=ious, low_res_np=low_res,
            transformed_points=concat[0][0].tolist(),
            labels=concat[1][0].tolist(),
            single_token_stability=stab,
            fallback=(not mm) and stab < dec.dynamic_multimask_stability_thresh,
            iou=iou[0].tolist(), obj_score=float(obj),
            low_res_range=(float(lr.min()), float(lr.max())),
            all4_range=(float(all_masks.min()), float(all_masks.max())),
            frac_pos=float((lr > 0).float().mean()),
        )
    return io, report


# --------------------------------------------------------------------------


def save_safetensors(tensors: dict, path: Path, meta: dict | None = None) -> None:
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path),
              metadata=meta)


def main() -> int:
    seed_everything()
    FIXTURES.mkdir(parents=True, exist_ok=True)

    print("official configs:")
    shapes = official_shapes()
    (FIXTURES / "sam2.1_shapes.json").write_text(
        json.dumps(shapes, separators=(",", ":")) + "\n")

    print("micro model:")
    torch.manual_seed(SEED)  # module constructors draw from the global RNG
    model = build_micro_model()
    gen = torch.Generator().manual_seed(SEED)
    randomise_(model, gen)
    model.eval()  # dropout off, dynamic multimask fallback on
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    assert all(v.dtype == torch.float32 for v in sd.values())
    print(f"  {len(sd)} tensors, {sum(v.numel() for v in sd.values()):,} values")
    # Save model.state_dict() itself (an OrderedDict carrying the `_metadata`
    # version attribute), as the official checkpoints do, so a Rust pickle
    # reader sees the same structure (collections.OrderedDict + BUILD).
    torch.save({"model": model.state_dict()}, FIXTURES / "sam2.1_micro.pt")
    # No safetensors copy: the 5 MB fixture budget holds one. The Rust tests convert the
    # .pt to safetensors themselves to exercise that loader.

    # Self-check: the .pt loads strictly into a freshly built micro model,
    # exactly like build_sam._load_checkpoint does for official checkpoints.
    fresh = build_micro_model()
    ck = torch.load(FIXTURES / "sam2.1_micro.pt", map_location="cpu", weights_only=True)
    fresh.load_state_dict(ck["model"], strict=True)

    print("reference io:")
    io, report = compute_io(model)
    # A single metadata entry on purpose: safetensors keeps metadata in a
    # hash map, so with several keys their order (and the file bytes) would
    # change from run to run.
    save_safetensors(io, FIXTURES / "sam2.1_micro_io.safetensors",
                     meta={"generator": f"tools/make_sam2_fixtures.py seed={SEED}"})

    for n, r in report["cases"].items():
        print(f"  case{n}: pts(128-frame)={[[round(c, 3) for c in pt] for pt in r['transformed_points']]} "
              f"labels={r['labels']} iou={[round(v, 4) for v in r['iou']]} "
              f"obj={r['obj_score']:.3f} low_res=[{r['low_res_range'][0]:.2f}, "
              f"{r['low_res_range'][1]:.2f}] all4=[{r['all4_range'][0]:.2f}, "
              f"{r['all4_range'][1]:.2f}] pos_frac={r['frac_pos']:.3f} "
              f"stab0={r['single_token_stability']:.4f} fallback={r['fallback']}")
    for k in ("input", "trunk.0", "trunk.3", "neck.0", "image_embed", "feat_s0"):
        v = io[k]
        print(f"  {k}: [{float(v.min()):.3f}, {float(v.max()):.3f}] std {float(v.std()):.3f}")

    total = 0
    print(f"fixtures in {FIXTURES.relative_to(REPO)}:")
    for f in sorted(FIXTURES.iterdir()):
        size = f.stat().st_size
        total += size
        print(f"  {f.name:32s} {size:>10,d} B")
    print(f"  {'TOTAL':32s} {total:>10,d} B")
    if total > SIZE_BUDGET_BYTES:
        # With the requested micro dims the weights alone are ~0.96 M f32
        # values (3.85 MB) per copy, stored twice (.pt + .safetensors).
        print(f"WARNING: fixtures exceed the {SIZE_BUDGET_BYTES:,} B budget",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
