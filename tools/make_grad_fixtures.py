#!/usr/bin/env python3
"""Reference gradients of the SAM 2.1 micro model, for crates/ruac-core/tests/parity_grad.rs.

Run from the repository root with the venv of tools/README.md:

    $VENV/bin/python tools/make_grad_fixtures.py

The committed micro checkpoint (tests/fixtures/sam2.1_micro.pt, 128 px) and the preprocessed
input of tests/fixtures/sam2.1_micro_io.safetensors go through the official sam2 modules with
`probe_loss` of tools/bench_train.py (image encoder, prompt encoder, `predict_masks`; BCE of
the four low-resolution masks against a disc plus the MSE of the IoU predictions to 0.5) for
one positive click, every parameter trained. Saved to
tests/fixtures/sam2.1_micro_grads.safetensors:

* `loss`: the loss;
* `norm.<name>`: the L2 norm of each parameter's gradient (every trained parameter);
* `grad.<name>`: whole gradients of a few small tensors on the paths the Rust autograd once
  got wrong (the background positional embedding behind the bicubic resize; the stage
  transition projections behind the 2x2 max-pool).

Deterministic (one thread, fixed inputs): re-running reproduces the file byte for byte.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import make_sam2_fixtures as mf  # noqa: E402
from bench_train import disc_target, probe_loss  # noqa: E402

FULL = [
    "image_encoder.trunk.pos_embed",
    "image_encoder.trunk.pos_embed_window",
    "image_encoder.trunk.blocks.1.proj.weight",
    "image_encoder.trunk.blocks.1.proj.bias",
]
POINT = (60.0, 50.0)


def main() -> int:
    mf.seed_everything()
    model = mf.build_micro_model()
    sd = torch.load(mf.FIXTURES / "sam2.1_micro.pt", map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(sd, strict=True)
    model = model.float().eval()
    x = load_file(str(mf.FIXTURES / "sam2.1_micro_io.safetensors"))["input"]
    s = x.shape[-1]
    coords = torch.tensor([[list(POINT)]], dtype=torch.float32)
    labels = torch.tensor([[1]], dtype=torch.int32)
    loss = probe_loss(model, x, coords, labels, disc_target(s // 4))
    loss.backward()
    out = {"loss": loss.detach().reshape(1).clone()}
    named = dict(model.named_parameters())
    for name, p in named.items():
        if p.grad is not None:
            out[f"norm.{name}"] = p.grad.double().norm().float().reshape(1)
    for name in FULL:
        out[f"grad.{name}"] = named[name].grad.detach().clone().contiguous()
    path = mf.FIXTURES / "sam2.1_micro_grads.safetensors"
    save_file(out, str(path), metadata={"generator": f"tools/make_grad_fixtures.py point={POINT}"})
    print(f"{path}: loss {float(loss.detach()):.6f}, {sum(k.startswith('norm.') for k in out)} gradient norms, "
          f"{path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
