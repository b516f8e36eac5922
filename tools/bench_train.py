#!/usr/bin/env python3
"""Speed of training: one RUAC training step broken down, and the SAM 2.1 model's forward
plus backward side by side with PyTorch.

Run from the repository root with the venv of tools/README.md:

    $VENV/bin/python tools/bench_train.py

1. Forward + backward (`crates/ruac-core/benches/fwd_bwd.rs` against the official `sam2`
   code): a random SAM 2.1-micro at 256 px (the checkpoint of `bench_compare.py`,
   `make_checkpoint`), the benchmark image, one positive click; the forward is the image
   encoder, the prompt encoder and `predict_masks` (four mask tokens); the loss is the mean
   BCE of the low-resolution masks against the disc plus the MSE of the IoU predictions to
   0.5. Two settings: every parameter trained, and the image encoder frozen. Both
   implementations run as separate processes with the same thread count, warm-up and
   repetitions; the script checks that they report the same loss and gradient norm.
2. A training step of `trainer train` (release build) with `configs/ruac-micro.toml` and
   `configs/bayes-only-micro.toml`, the curriculum moved so that every step is a full step
   (KL and, for RUAC, the adversarial branch on from step 0): the per-step breakdown the
   trainer logs (`time` in log.jsonl: data, attackers, forward, backward, optimiser), median
   over the steps after the first.

The machine should be otherwise idle (the script waits for it, as bench_compare.py does).
Results: BENCHMARKS.md, "Training".
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import bench_compare as bc  # noqa: E402  (shared: checkpoint, image, idle wait, machine info)


def disc_target(low: int):
    """The benchmark image's disc at the low-resolution mask size (benches/fwd_bwd.rs)."""
    import numpy as np
    import torch

    yy, xx = np.mgrid[0:low, 0:low]
    c, r = low * 2 // 5, low // 6
    return torch.from_numpy((((xx - c) ** 2 + (yy - c) ** 2) <= r * r).astype(np.float32))[None, None]


def probe_loss(model, x, coords, labels, tgt):
    """The loss of benches/fwd_bwd.rs and tests/parity_grad.rs: image encoder, prompt
    encoder and `predict_masks` (all four mask tokens); mean BCE of the low-resolution masks
    against `tgt` plus the MSE of the IoU predictions to 0.5."""
    import torch

    s = x.shape[-1]
    feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    backbone_out = model.forward_image(x)
    _, vision_feats, _, _ = model._prepare_backbone_features(backbone_out)
    vision_feats[-1] = vision_feats[-1] + model.no_mem_embed
    feats = [f.permute(1, 2, 0).view(1, -1, *fs) for f, fs in zip(vision_feats[::-1], feat_sizes[::-1])][::-1]
    sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    masks, iou, _, _ = model.sam_mask_decoder.predict_masks(
        image_embeddings=feats[-1],
        image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        repeat_image=False,
        high_res_features=feats[:-1],
    )
    bce = torch.nn.functional.binary_cross_entropy_with_logits(masks, tgt.expand_as(masks))
    return bce + ((iou - 0.5) ** 2).mean()


def torch_worker(a) -> int:
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(a.threads)
    workdir = Path(a.weights).parent
    model = bc.build_reference_model("micro", a.image_size, workdir)
    sd = {k: v for k, v in load_file(a.weights).items() if not k.startswith("sam_mask_decoder.pixel_bndl.")}
    model.load_state_dict(sd, strict=True)
    model = model.float().eval()  # eval: no dropout / drop-path, as the Rust forward
    from sam2.utils.transforms import SAM2Transforms

    s = a.image_size
    image, point = bc.bench_image(s)
    x = SAM2Transforms(resolution=s, mask_threshold=0.0)(image)[None]
    coords = torch.tensor([[list(point)]], dtype=torch.float32)
    labels = torch.tensor([[1]], dtype=torch.int32)
    tgt = disc_target(s // 4)

    def forward():
        return probe_loss(model, x, coords, labels, tgt)

    results = {}
    for setting in ("full", "frozen_encoder"):
        for name, p in model.named_parameters():
            p.requires_grad_(setting == "full" or not name.startswith("image_encoder."))
        trained = [p for p in model.parameters() if p.requires_grad]
        fwd, bwd = [], []
        for rep in range(a.warmup + a.reps):
            model.zero_grad(set_to_none=True)
            t0 = time.perf_counter()
            loss = forward()
            t1 = time.perf_counter()
            loss.backward()
            norms = {n: float(p.grad.double().norm()) for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}
            sq = sum(v * v for v in norms.values())
            t2 = time.perf_counter()
            if rep >= a.warmup:
                fwd.append(t1 - t0)
                bwd.append(t2 - t1)
        results[setting] = {
            # Parameters the loss reaches (the video-path modules never get a gradient).
            "trained_params": sum(p.numel() for p in trained if p.grad is not None),
            "loss": float(loss.detach()),
            "grad_norm": sq ** 0.5,
            "grad_norms": norms,
            "timings": {"forward": bc.stats(fwd), "backward": bc.stats(bwd),
                        "forward_backward": bc.stats([f + b for f, b in zip(fwd, bwd)])},
        }
        print(f"pytorch {setting} @{s} threads={a.threads}: forward {results[setting]['timings']['forward']['median_s']:.4f}s, "
              f"backward {results[setting]['timings']['backward']['median_s']:.4f}s, loss {float(loss):.6f}, "
              f"grad norm {sq ** 0.5:.6f}", file=sys.stderr)
    out = {"impl": "pytorch", "torch": torch.__version__, "image_size": s, "threads": a.threads,
           "torch_threads": torch.get_num_threads(), "image_fnv1a64": bc.fnv1a(image.tobytes()),
           "reps": a.reps, "warmup": a.warmup, "settings": results}
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


def build() -> tuple[str, str]:
    """The fwd_bwd bench binary and the release trainer."""
    out = subprocess.run(["cargo", "bench", "-p", "ruac-core", "--bench", "fwd_bwd", "--no-run",
                          "--message-format=json"], cwd=REPO, check=True, capture_output=True, text=True).stdout
    bench = None
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "fwd_bwd" and msg.get("executable"):
            bench = msg["executable"]
    if bench is None:
        raise SystemExit("cargo did not report the fwd_bwd bench binary")
    subprocess.run(["cargo", "build", "--release", "-p", "trainer"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return bench, str(target / "release" / "trainer")


def step_config(src: Path, dst: Path, steps: int) -> None:
    """`src` with every step a full step: KL and the adversarial branch from step 0, no
    checkpoint before the end (the trainer always writes one at the last step)."""
    text = src.read_text()
    text = re.sub(r"(?m)^steps = \d+", f"steps = {steps}", text)
    text = re.sub(r"(?m)^checkpoint_every = \d+", f"checkpoint_every = {steps}", text)
    text = re.sub(r'(?m)^init = "(.*)"', lambda m: f'init = "{(REPO / m.group(1)).as_posix()}"', text)
    if "[weights]" in text:
        raise SystemExit(f"{src} has its own [weights] section; extend step_config")
    text += "\n[weights]\nkl_from = 0.0\nadv_from = 0.0\n"
    dst.write_text(text)


def train_steps(trainer: str, config: Path, steps: int, threads: int, workdir: Path) -> dict:
    cfg = workdir / f"{config.stem}.toml"
    step_config(config, cfg, steps)
    run = workdir / f"run-{config.stem}-{threads}"
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    busy = bc.wait_idle(60)
    subprocess.run([trainer, "train", "--config", str(cfg), "--out", str(run), "--quiet"], cwd=REPO, env=env, check=True)
    recs = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    later = recs[1:]  # the first step allocates and warms caches
    phases = ["data", "attack", "forward", "backward", "optim"]
    med = {p: statistics.median(r["time"][p] for r in later) for p in phases}
    med["step"] = statistics.median(r["seconds"] for r in later)
    return {"config": str(config.relative_to(REPO)), "threads": threads, "steps": len(recs), "busy_cores_before": busy,
            "median_s": med, "loss_first": recs[0]["loss"], "loss_last": recs[-1]["loss"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=6, help="training steps per breakdown run")
    ap.add_argument("--out", default=str(REPO / "target" / "bench_compare" / "train.json"))
    ap.add_argument("--worker", choices=["torch"], help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker == "torch":
        a.threads = a.threads[0]
        return torch_worker(a)

    bench, trainer = build()
    results = {"machine": bc.machine_info(), "fwd_bwd": [], "train_step": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = bc.make_checkpoint("micro", a.image_size, tmp, seed=7)
        for t in a.threads:
            env = dict(os.environ, RAYON_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
            row = {"threads": t}
            for impl, cmd in (
                ("pytorch", [sys.executable, __file__, "--worker", "torch", "--weights", str(weights),
                             "--threads", str(t), "--reps", str(a.reps), "--warmup", str(a.warmup),
                             "--image-size", str(a.image_size)]),
                ("rust", [bench, "--weights", str(weights), "--config", "micro", "--image-size", str(a.image_size),
                          "--threads", str(t), "--reps", str(a.reps), "--warmup", str(a.warmup)]),
            ):
                js = tmp / f"{impl}-{t}.json"
                bc.wait_idle(60)
                subprocess.run(cmd + ["--json", str(js)], cwd=REPO, env=env, check=True)
                row[impl] = json.loads(js.read_text())
            for setting in ("full", "frozen_encoder"):
                py, rs = row["pytorch"]["settings"][setting], row["rust"]["settings"][setting]
                for key in ("loss", "grad_norm"):
                    rel = abs(py[key] - rs[key]) / max(abs(py[key]), 1e-12)
                    if rel > 1e-3:
                        raise SystemExit(f"{setting} threads={t}: {key} differs: PyTorch {py[key]}, Rust {rs[key]}")
            results["fwd_bwd"].append(row)
        for t in a.threads:
            for config in ("configs/ruac-micro.toml", "configs/bayes-only-micro.toml"):
                results["train_step"].append(train_steps(trainer, REPO / config, a.steps, t, tmp))

    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2) + "\n")
    print(tables(results))
    print(f"\n(everything in {a.out})")
    return 0


def tables(r: dict) -> str:
    lines = ["| setting | threads | PyTorch fwd (ms) | Rust fwd (ms) | ratio | PyTorch bwd (ms) | Rust bwd (ms) | ratio | "
             "fwd+bwd ratio | loss (PyTorch / Rust) | grad norm (PyTorch / Rust) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["fwd_bwd"]:
        for setting in ("full", "frozen_encoder"):
            py, rs = row["pytorch"]["settings"][setting], row["rust"]["settings"][setting]
            m = lambda d, k: d["timings"][k]["median_s"]  # noqa: E731
            lines.append(
                f"| {setting} | {row['threads']} | {1e3 * m(py, 'forward'):.1f} | {1e3 * m(rs, 'forward'):.1f} | "
                f"{m(py, 'forward') / m(rs, 'forward'):.2f} | {1e3 * m(py, 'backward'):.1f} | {1e3 * m(rs, 'backward'):.1f} | "
                f"{m(py, 'backward') / m(rs, 'backward'):.2f} | {m(py, 'forward_backward') / m(rs, 'forward_backward'):.2f} | "
                f"{py['loss']:.6f} / {rs['loss']:.6f} | {py['grad_norm']:.5f} / {rs['grad_norm']:.5f} |")
    lines += ["", "| config | threads | step (s) | data | attackers | forward | backward | optimiser |",
              "|---|---|---|---|---|---|---|---|"]
    for s in r["train_step"]:
        m = s["median_s"]
        pct = lambda k: f"{m[k]:.3f} s ({100 * m[k] / m['step']:.1f} %)"  # noqa: E731
        lines.append(f"| {s['config']} | {s['threads']} | {m['step']:.2f} | {pct('data')} | {pct('attack')} | "
                     f"{pct('forward')} | {pct('backward')} | {pct('optim')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
