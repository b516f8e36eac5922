#!/usr/bin/env python3
"""Reference fixtures for RUAC's Bayesian pixel head (ruac-core parity tests).

The authors' BNDL class (HongyouZhou/BNDL@545fcb24, imported by
ruac/adapters/sam2/bayesian_decoder.py) is not available offline, so the head is
re-implemented here from the authors' formulas (ruac/core/bndl/uncertainty.py,
ruac/core/losses/bndl.py, the original BNDL layer in XYHu122/BNDL model_helpers.py);
see ARCHITECTURE.md "Reference differences". The SAM 2.1 part is the official
PyPI `sam2` code on the micro checkpoint of make_sam2_fixtures.py.

Writes to crates/ruac-core/tests/fixtures/:
* ruac_micro_head.safetensors  the tensors a RUAC model.safetensors adds to SAM 2.1:
  sam_mask_decoder.pixel_bndl.* plus small training-only attacker tensors
  (style_attacker., style_gcn., deform_attacker.) that loaders must skip.
* ruac_micro_io.safetensors     head inputs (upscaled embedding, mask tokens of one
  prompt), Weibull parameters, mean logits, analytic uncertainty, Monte Carlo
  uncertainty for injected uniforms, the Weibull-Gamma KL terms, and the
  predictor's low-res logits / IoU for that prompt.

Run: $VENV/bin/python tools/make_ruac_fixtures.py (after make_sam2_fixtures.py).
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_sam2_fixtures as base  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from sam2.sam2_image_predictor import SAM2ImagePredictor  # noqa: E402

FIX = base.FIXTURES
MC_SAMPLES = 3  # injected draws; the Rust default is 20 seeded ones
PROB_CLAMP = 1e-4


class BNDLHead(nn.Module):
    """BNDL layer as RUAC uses it: BNDL(num_features=C, num_classes=2, mask_token_dim=D)."""

    def __init__(self, c: int, d: int):
        super().__init__()
        self.linear_add = nn.Sequential(nn.Linear(c, c))
        self.linear_k = nn.Sequential(nn.Linear(c, 1))
        self.linear_add_w = nn.Linear(d, 2 * c)
        self.linear_kw = nn.Sequential(nn.Linear(2, 1))
        self.linear = nn.Module()  # only the decision bias of the original layer survives
        self.linear.bias = nn.Parameter(torch.zeros(2))
        self.c = c

    def params(self, x, t, factor_z=0.0, factor_w=0.0):
        """x: (B,H,W,C) upscaled embedding (NHWC), t: (B,K,D) mask tokens."""
        a = F.relu(self.linear_add(x) - factor_z)
        k = F.softplus(self.linear_k(a))
        inv_k = 1.0 / k
        lam = a / torch.exp(torch.lgamma(1 + inv_k))
        b, kk, _ = t.shape
        r = F.relu(self.linear_add_w(t).reshape(b, kk, 2, self.c) - factor_w)
        kw = F.softplus(self.linear_kw(r.transpose(2, 3))).transpose(2, 3)
        inv_kw = 1.0 / kw
        lam_w = r / torch.exp(torch.lgamma(1 + inv_kw))
        bias = F.relu(self.linear.bias - factor_w)
        return lam, inv_k, lam_w, inv_kw, bias[1] - bias[0]

    @staticmethod
    def logits(z, w, bias):
        diff = w[:, :, 1] - w[:, :, 0]  # (B,K,C)
        return torch.einsum("bhwc,bkc->bkhw", z, diff) + bias

    def mean_logits(self, x, t):
        lam, inv_k, lam_w, inv_kw, bias = self.params(x, t)
        z = lam * torch.exp(torch.lgamma(1 + inv_k))
        w = lam_w * torch.exp(torch.lgamma(1 + inv_kw))
        return self.logits(z, w, bias)


def entropy(p):
    p = p.clamp(PROB_CLAMP, 1 - PROB_CLAMP)
    return torch.special.entr(p) + torch.special.entr(1 - p)


def weibull_var(lam, inv_k):
    l1 = torch.lgamma(1 + inv_k)
    l2 = torch.lgamma(1 + 2 * inv_k)
    ld = l2 + torch.log1p(-torch.exp(torch.clamp(2 * l1 - l2, max=-1e-7)))
    return lam**2 * torch.exp(ld)


def analytic(head, x, t, factor_w=0.02):
    lam, inv_k, lam_w, inv_kw, bias = head.params(x, t, 0.0, factor_w)
    mu = head.logits(lam * torch.exp(torch.lgamma(1 + inv_k)), lam_w * torch.exp(torch.lgamma(1 + inv_kw)), bias)
    var_z = weibull_var(lam, inv_k)
    var_w = weibull_var(lam_w, inv_kw).mean(dim=2).clamp(min=1e-8)
    v = torch.einsum("bhwc,bkc->bkhw", var_z, var_w)
    kappa = 1.0 / torch.sqrt(1.0 + (math.pi / 8.0) * v + 1e-8)
    return entropy(torch.sigmoid(kappa * mu)) / math.log(2.0)


def kl_gamma_weibull(lam, inv_k, alpha=1.0, beta=3.0):
    """KL_GamWei of ruac/core/losses/bndl.py, sign flipped back to a KL."""
    gE = 0.5772
    inv_k = inv_k.clamp(1e-10, 1e3).expand_as(lam)
    lam = lam.clamp(1e-10, 1e6)
    kl = (gE * alpha * inv_k - alpha * torch.log(lam) - torch.log(inv_k) + beta * lam * torch.exp(torch.lgamma(1 + inv_k))
          - gE - 1 - alpha * math.log(beta) + math.lgamma(alpha))
    return kl.sum(-1).mean().clamp(-1000, 1000)


@torch.no_grad()
def main() -> int:
    base.seed_everything()
    model = base.build_micro_model()
    ck = torch.load(FIX / "sam2.1_micro.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(ck["model"], strict=True)
    model.eval()
    dec = model.sam_mask_decoder
    d = dec.transformer_dim
    c = d // 8

    gen = torch.Generator().manual_seed(base.SEED + 7)
    head = BNDLHead(c, d)
    # Well-conditioned random head: shapes kappa around 1..3, about half the features active.
    for name, p in head.named_parameters():
        if p.dim() == 2:
            p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
        else:
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    head.linear_k[0].bias.add_(1.0)
    head.linear_kw[0].bias.add_(1.0)
    head.linear.bias.copy_(torch.tensor([0.1, 1.8]))  # logits of both signs

    # Features and prompt of case 0 (one positive click, multimask), through the official predictor.
    predictor = SAM2ImagePredictor(model)
    s = model.image_size
    predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    image = base.make_test_image()
    predictor.set_image(image)
    pts = torch.tensor([[[52.0 / image.shape[1] * s, 40.0 / image.shape[0] * s]]])
    lab = torch.tensor([[1]], dtype=torch.int)
    sparse, dense = model.sam_prompt_encoder(points=(pts, lab), boxes=None, masks=None)
    feats = predictor._features
    # The decoder up to the pixel step (MaskDecoder.predict_masks, unchanged in RUAC).
    tokens = torch.cat([dec.obj_score_token.weight, dec.iou_token.weight, dec.mask_tokens.weight], 0)[None]
    tokens = torch.cat([tokens, sparse], 1)
    src = feats["image_embed"] + dense
    b, ch, h, w = src.shape
    hs, src = dec.transformer(src, model.sam_prompt_encoder.get_dense_pe(), tokens)
    iou = dec.iou_prediction_head(hs[:, 1])
    mask_tokens = hs[:, 2:6]
    src = src.transpose(1, 2).view(b, ch, h, w)
    dc1, ln1, act1, dc2, act2 = dec.output_upscaling
    feat_s0, feat_s1 = feats["high_res_feats"]
    up = act2(dc2(act1(ln1(dc1(src) + feat_s1))) + feat_s0)  # (1,C,4h,4w)
    x = up.permute(0, 2, 3, 1)

    lam, inv_k, lam_w, inv_kw, bias = head.params(x, mask_tokens)
    logits = head.mean_logits(x, mask_tokens)
    io = {
        "upscaled": up, "mask_tokens": mask_tokens,
        "lambda_f": lam, "inv_k_f": inv_k, "lambda_w": lam_w, "inv_k_w": inv_kw,
        "logits": logits, "analytic": analytic(head, x, mask_tokens),
        "kl_f": kl_gamma_weibull(lam, inv_k).reshape(1), "kl_w": kl_gamma_weibull(lam_w, inv_kw).reshape(1),
        # What the predictor returns for case 0 (multimask: tokens 1..3), low resolution.
        "case0.low_res_masks": logits[:, 1:].clamp(-32, 32), "case0.iou": iou[:, 1:],
    }
    probs = []
    for i in range(MC_SAMPLES):
        u_f = torch.rand(lam.shape, generator=gen)
        u_w = torch.rand(lam_w.shape, generator=gen)
        z = lam * (-torch.log(torch.clamp(1 - u_f, min=1e-10))) ** inv_k
        ww = lam_w * (-torch.log(torch.clamp(1 - u_w, min=1e-10))) ** inv_kw
        probs.append(torch.sigmoid(head.logits(z, ww, bias)))
        io[f"mc.u_f.{i}"], io[f"mc.u_w.{i}"] = u_f, u_w
    mean_p = torch.stack(probs).mean(0)
    io["mc.mean_prob"], io["mc.entropy"] = mean_p, entropy(mean_p)

    weights = {f"sam_mask_decoder.pixel_bndl.{k}": v.detach().clone().contiguous() for k, v in head.state_dict().items()}
    # Training-only attacker tensors as the released file may carry them (ruac/hub.py skips these prefixes).
    weights["style_attacker.mlp.0.weight"] = torch.randn((16, d), generator=gen)
    weights["style_gcn.layers.0.weight"] = torch.randn((6, 6), generator=gen)
    weights["deform_attacker.offset_net.0.weight"] = torch.randn((4, 3, 3, 3), generator=gen)
    save_file(weights, FIX / "ruac_micro_head.safetensors", metadata={"generator": "tools/make_ruac_fixtures.py"})
    save_file({k: v.contiguous().float() for k, v in io.items()}, FIX / "ruac_micro_io.safetensors",
              metadata={"generator": "tools/make_ruac_fixtures.py"})
    print("logits", float(logits.min()), float(logits.max()), "kappa_f", float((1 / inv_k).min()), float((1 / inv_k).max()))
    print("analytic", float(io["analytic"].min()), float(io["analytic"].max()), "mc", float(io["mc.entropy"].max()))
    print("kl", float(io["kl_f"]), float(io["kl_w"]))
    total = sum(f.stat().st_size for f in FIX.iterdir())
    print(f"fixtures total {total:,} B")
    return 0 if total <= 5_000_000 else 1


if __name__ == "__main__":
    sys.exit(main())
