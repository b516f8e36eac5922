#!/usr/bin/env python3
"""Speed and peak memory of ruac-core's predictor against the PyTorch reference.

Run from the repository root with the venv of tools/README.md:

    $VENV/bin/python tools/bench_compare.py

For each configuration (default: `micro` at 256 px, `tiny` at 1024 px) it

1. builds a randomly initialised SAM 2.1 model with the official `sam2` code (the
   functions of make_sam2_fixtures.py: `build_micro_model`, `randomise_`; the official
   `configs/sam2.1/sam2.1_hiera_t.yaml` for tiny) and adds a random RUAC Bayesian pixel
   head (`sam_mask_decoder.pixel_bndl.*`), saved as one safetensors checkpoint in a
   temporary directory (deleted afterwards, never committed);
2. runs, as separate processes and one after the other, for every thread count:
   * the PyTorch reference: `SAM2ImagePredictor.set_image` / `.predict` (eval, no_grad,
     f32, `torch.set_num_threads`) on the SAM 2.1 weights of that checkpoint;
   * the Rust bench binary (crates/ruac-core/benches/predictor.rs, release build) with
     RAYON_NUM_THREADS set;
   on the same deterministic image (the image size square; 1024x1024 for tiny), the same
   positive click with multimask output, the same warm-up and repetitions;
3. records each process's peak RSS (GNU time `%M`) and the in-process peaks (`VmHWM`,
   whole process and set_image alone), checks that both implementations return the same
   IoU predictions (SAM head, same weights), and writes a Markdown table to stdout and
   everything to a JSON file.

Ratios are PyTorch time / Rust time: above 1 means Rust is faster. PyTorch's `predict`
has no uncertainty map; it is compared with the Rust decoder on SAM 2.1's own pixel head
without uncertainty (what `predict` computes minus the map). The Rust predict times with
the RUAC head and its uncertainty (Monte Carlo, 20 samples; analytic) are listed beside.

The machine should be otherwise idle: before each measurement the script waits (up to
--idle-wait seconds) until other processes use less than 0.15 of a core; it measures the
CPU other processes take during each run and repeats a disturbed run (--retries).
Results: see BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOOLS = REPO / "tools"

DEFAULT_SIZES = {"micro": 256, "tiny": 1024}


# --------------------------------------------------------------------------
# Shared: model construction, image, /proc helpers
# --------------------------------------------------------------------------


def _fixtures_module():
    """tools/make_sam2_fixtures.py, imported (it initialises hydra through sam2)."""
    sys.path.insert(0, str(TOOLS))
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
    import make_sam2_fixtures as mf  # noqa: E402

    return mf


def build_reference_model(config: str, image_size: int, workdir: Path):
    """The official sam2 model of a configuration, untrained (weights set by the caller)."""
    mf = _fixtures_module()
    if config == "micro":
        # The fixture yaml is at 128 px; the micro model runs at `image_size` here. The
        # prompt encoder's grid follows SAM2Base.image_size, so it has to be set before
        # instantiation: point the fixture module at a copy of the yaml with that size.
        from omegaconf import OmegaConf

        cfg = OmegaConf.load(mf.MICRO_CFG)
        cfg.model.image_size = image_size
        patched = workdir / f"sam2.1_micro_{image_size}.yaml"
        OmegaConf.save(cfg, patched)
        mf.MICRO_CFG = patched
        return mf.build_micro_model()
    if config in mf.OFFICIAL_CONFIGS:
        from sam2.build_sam import build_sam2

        if image_size != 1024:
            raise SystemExit(f"{config}: only the official 1024 px input is supported here")
        return build_sam2(mf.OFFICIAL_CONFIGS[config], ckpt_path=None, device="cpu")
    raise SystemExit(f"unknown configuration {config}")


def bayes_head_tensors(d: int, gen) -> dict:
    """A random RUAC pixel head (BNDL layer, C = d/8 features, 2 classes), with the
    conditioning recipe of tools/make_ruac_fixtures.py (shapes κ around 1..3, about half the
    features active, logits of both signs)."""
    import torch

    c = d // 8
    shapes = {
        "linear_add.0.weight": (c, c), "linear_add.0.bias": (c,),
        "linear_k.0.weight": (1, c), "linear_k.0.bias": (1,),
        "linear_add_w.weight": (2 * c, d), "linear_add_w.bias": (2 * c,),
        "linear_kw.0.weight": (1, 2), "linear_kw.0.bias": (1,),
    }
    out = {}
    for name, shape in shapes.items():
        if len(shape) == 2:
            t = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
        else:
            t = 0.1 * torch.randn(shape, generator=gen)
        if name in ("linear_k.0.bias", "linear_kw.0.bias"):
            t = t + 1.0
        out["sam_mask_decoder.pixel_bndl." + name] = t
    out["sam_mask_decoder.pixel_bndl.linear.bias"] = torch.tensor([0.1, 1.8])
    return out


def make_checkpoint(config: str, image_size: int, workdir: Path, seed: int) -> Path:
    import torch
    from safetensors.torch import save_file

    mf = _fixtures_module()
    torch.manual_seed(seed)
    model = build_reference_model(config, image_size, workdir)
    gen = torch.Generator().manual_seed(seed)
    mf.randomise_(model, gen)
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    sd.update(bayes_head_tensors(model.sam_mask_decoder.transformer_dim, gen))
    path = workdir / f"{config}_{image_size}.safetensors"
    save_file(sd, str(path), metadata={"generator": f"tools/bench_compare.py seed={seed}"})
    return path


def bench_image(s: int):
    """The Rust bench's image (benches/predictor.rs, `bench_image`), byte for byte."""
    import numpy as np

    w = h = s
    y, x = np.mgrid[0:h, 0:w].astype(np.int64)
    img = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), 255 - (x + y) * 255 // (w + h - 2)], -1)
    cx, cy, r = w * 2 // 5, h * 2 // 5, w // 6
    rect = (x >= w * 3 // 5) & (x <= w * 9 // 10) & (y >= h // 10) & (y <= h // 2)
    disc = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    img[rect] = (25, 60, 210)
    img[disc] = (220, 30, 40)
    return img.astype(np.uint8), (float(cx), float(cy))


def fnv1a(data: bytes) -> str:
    import numpy as np

    # Vectorised would be nicer; a plain loop over 3 MB takes ~1 s, fine for a check.
    h = 0xCBF29CE484222325
    for b in np.frombuffer(data, np.uint8).tolist():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def proc_status_kb(field: str):
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def stats(times):
    v = sorted(times)
    return {"median_s": statistics.median(v), "min_s": v[0], "max_s": v[-1], "times_s": list(times)}


def time_it(warmup, reps, f):
    for _ in range(warmup):
        f()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return times


# --------------------------------------------------------------------------
# PyTorch worker (a separate process)
# --------------------------------------------------------------------------


def torch_worker(a) -> int:
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    from safetensors.torch import load_file
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    workdir = Path(a.weights).parent
    model = build_reference_model(a.config, a.image_size, workdir)
    sd = {k: v for k, v in load_file(a.weights).items() if not k.startswith("sam_mask_decoder.pixel_bndl.")}
    model.load_state_dict(sd, strict=True)
    model = model.float().eval()
    del sd
    predictor = SAM2ImagePredictor(model)
    s = model.image_size
    predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    load_s = time.perf_counter() - t0
    load_peak = proc_status_kb("VmHWM:")

    image, point = bench_image(a.image_size)
    coords = np.array([point], np.float32)
    labels = np.array([1], np.int32)

    with torch.no_grad():
        rss_before = proc_status_kb("VmRSS:")
        reset_ok = reset_peak_rss()
        t = time.perf_counter()
        predictor.set_image(image)
        first = time.perf_counter() - t
        set_peak = proc_status_kb("VmHWM:")
        set_times = time_it(max(a.warmup - 1, 0), a.reps, lambda: predictor.set_image(image))
        set_peak_reps = proc_status_kb("VmHWM:")

        def pred():
            return predictor.predict(point_coords=coords, point_labels=labels, multimask_output=True, return_logits=True)

        pred_times = time_it(a.warmup, a.reps, pred)
        masks, ious, low = pred()

    out = {
        "impl": "pytorch",
        "torch": torch.__version__,
        "config": a.config,
        "image_size": s,
        "image_hw": list(image.shape[:2]),
        "image_fnv1a64": fnv1a(image.tobytes()),
        "point": list(point),
        "threads": a.threads,
        "torch_threads": torch.get_num_threads(),
        "reps": a.reps,
        "warmup": a.warmup,
        "params": sum(p.numel() for p in model.parameters()),
        "load_s": load_s,
        "first_set_image_s": first,
        "timings": {"set_image": stats(set_times), "predict": stats(pred_times)},
        "memory_kb": {
            "load_peak_vmhwm": load_peak,
            "rss_before_set_image": rss_before,
            "set_image_peak_vmhwm": set_peak if reset_ok else None,
            "peak_vmhwm_after_set_image_reps": set_peak_reps,
            "peak_reset_supported": reset_ok,
            "final_vmhwm": proc_status_kb("VmHWM:"),
        },
        "outputs": {
            "sam_head_no_unc": {
                "iou": [float(v) for v in ious],
                "low_res_mean": float(low.astype(np.float64).mean()),
                "low_res_abs_mean": float(np.abs(low.astype(np.float64)).mean()),
                "mask_positive_pixels": int((masks > 0).sum()),
                "low_res_shape": list(low.shape),
            }
        },
    }
    Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    print(f"pytorch {a.config} @{s} threads={a.threads}: set_image {out['timings']['set_image']['median_s']:.4f}s, "
          f"predict {out['timings']['predict']['median_s']:.4f}s, set_image peak {(set_peak or 0) // 1024} MiB",
          file=sys.stderr)
    return 0


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def busy_cores(window: float = 3.0) -> float:
    """CPU time used by anything on the machine over `window` seconds, in cores."""
    def snap():
        f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        v = [int(x) for x in f]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    t0, i0 = snap()
    time.sleep(window)
    t1, i1 = snap()
    return (os.cpu_count() or 1) * (1 - (i1 - i0) / max(1, t1 - t0))


def wait_idle(max_wait: float, threshold: float = 0.15) -> float:
    """Waits until the machine is idle (less than `threshold` cores busy over 3 s): a compile
    or another job on a 2-core machine distorts both implementations' times. Returns the last
    busy-core reading, which is recorded with each measurement."""
    t = time.time()
    busy = busy_cores()
    while busy > threshold and time.time() - t < max_wait:
        time.sleep(5)
        busy = busy_cores()
    if busy > threshold:
        print(f"WARNING: the machine is busy ({busy:.2f} cores in use by others); timings will be disturbed", file=sys.stderr)
    return busy


def cpu_snapshot():
    """(total, busy) jiffies of the whole machine, from /proc/stat."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(v), sum(v) - v[3] - v[4]


def run_measured(cmd, env, rss_file: Path) -> dict:
    """Runs a child process; returns its exit status, peak RSS (kB), wall time, CPU time and
    the CPU other processes used meanwhile (in cores, averaged over the run).

    The peak comes from GNU time (`%M`), not from this process's wait4 rusage: Linux keeps
    ru_maxrss across exec, so a child forked from this (torch-importing) interpreter would
    inherit the interpreter's peak. /usr/bin/time is a small C program, so its child starts
    small."""
    hz = os.sysconf("SC_CLK_TCK")
    t = time.perf_counter()
    s0 = cpu_snapshot()
    if Path("/usr/bin/time").exists():
        rc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", "-o", str(rss_file)] + cmd, env=env).returncode
        rss, user, sys_ = rss_file.read_text().split()[-3:]
        rss, cpu = int(rss), float(user) + float(sys_)
    else:
        p = subprocess.Popen(cmd, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        rc, rss, cpu = os.waitstatus_to_exitcode(status), ru.ru_maxrss, ru.ru_utime + ru.ru_stime
        print("WARNING: no /usr/bin/time; the child's peak RSS includes this interpreter's", file=sys.stderr)
    s1 = cpu_snapshot()
    wall = time.perf_counter() - t
    others = max(0.0, ((s1[1] - s0[1]) / hz - cpu) / wall)
    if others > 0.1:
        print(f"WARNING: other processes used {others:.2f} cores during this run; its times are disturbed", file=sys.stderr)
    return {"rc": rc, "maxrss_kb": rss, "wall_s": wall, "cpu_s": cpu, "others_cores": others}


def build_rust_bench(bench: str = "predictor") -> str:
    """Builds a ruac-core bench binary (release) and returns its path."""
    cmd = ["cargo", "bench", "-p", "ruac-core", "--bench", bench, "--no-run", "--message-format=json"]
    print("+ " + " ".join(cmd), file=sys.stderr)
    res = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, check=True, text=True)
    exe = None
    for line in res.stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == bench and msg.get("executable"):
            exe = msg["executable"]
    if not exe:
        raise SystemExit(f"cargo did not report the {bench} bench executable")
    return exe


def measure(impl: str, cmd, env, workdir: Path, idle_wait: float, retries: int) -> dict:
    """Runs one measurement after waiting for an idle machine; a run during which other
    processes took CPU is repeated (`retries` times). Returns `run_measured`'s record."""
    for attempt in range(retries + 1):
        busy = wait_idle(idle_wait)
        m = run_measured(cmd, env, workdir / f"rss_{impl}")
        if m["rc"] != 0:
            raise SystemExit(f"{impl} run failed ({m['rc']}): {' '.join(cmd)}")
        m["busy_cores_before"], m["attempt"] = busy, attempt
        if m["others_cores"] <= 0.1:
            break
    return m


def machine_info() -> dict:
    info = {"platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], stdout=subprocess.PIPE, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    for name, cmd in (("rustc", ["rustc", "-V"]), ("cargo", ["cargo", "-V"])):
        try:
            info[name] = subprocess.run(cmd, stdout=subprocess.PIPE, text=True).stdout.strip()
        except OSError:
            pass
    try:
        lock = (REPO / "Cargo.lock").read_text().split("[[package]]")
        for blk in lock:
            if 'name = "candle-core"' in blk or 'name = "gemm"\n' in blk:
                n = blk.split('name = "')[1].split('"')[0]
                info[n] = blk.split('version = "')[1].split('"')[0]
    except OSError:
        pass
    import torch

    info["torch"] = torch.__version__
    info["torch_parallel"] = torch.__config__.parallel_info().splitlines()[-1] if hasattr(torch, "__config__") else None
    try:
        from importlib.metadata import version

        info["sam2"] = version("sam2")
    except Exception:  # noqa: BLE001
        pass
    info["python"] = platform.python_version()
    try:
        git = lambda *a: subprocess.run(["git", *a], cwd=REPO, stdout=subprocess.PIPE, text=True).stdout.strip()  # noqa: E731
        info["git_commit"] = git("rev-parse", "HEAD")
        # Uncommitted changes in what the Rust bench compiles (the model code and the bench).
        info["git_dirty_model_files"] = git("status", "--porcelain", "--", "crates/ruac-core/src/model",
                                            "crates/ruac-core/src/predictor.rs", "crates/ruac-core/src/image_io.rs",
                                            "crates/ruac-core/src/checkpoint.rs", "crates/ruac-core/benches").splitlines()
    except OSError:
        pass
    return info


def fmt_ms(s):
    return "–" if s is None else (f"{s * 1e3:.1f}" if s < 10 else f"{s * 1e3:.0f}")


def fmt_s(s):
    return "–" if s is None else f"{s:.3f}"


def mib(kb):
    return "–" if kb is None else f"{kb / 1024:.0f}"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a / b:.2f}"


def med(r, key):
    t = r["timings"].get(key)
    return None if t is None else t["median_s"]


def mins(r, key):
    t = r["timings"].get(key)
    return None if t is None else t["min_s"]


def table(rows) -> str:
    out = []
    out.append("Times: median of the repetitions (min in brackets). Ratio = PyTorch / Rust (> 1: Rust faster).\n")
    out.append("| config | input | threads | set_image PyTorch (s) | set_image Rust (s) | ratio | predict PyTorch (ms) | "
               "predict Rust, SAM head, no unc. (ms) | ratio | Rust RUAC head, no unc. (ms) | Rust RUAC + analytic unc. (ms) | "
               "Rust RUAC + MC-20 unc. (ms) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        py, rs = r["pytorch"], r["rust"]
        out.append(
            f"| {r['config']} | {r['image_size']}² | {r['threads']} "
            f"| {fmt_s(med(py, 'set_image'))} ({fmt_s(mins(py, 'set_image'))}) "
            f"| {fmt_s(med(rs, 'set_image'))} ({fmt_s(mins(rs, 'set_image'))}) "
            f"| {ratio(med(py, 'set_image'), med(rs, 'set_image'))} "
            f"| {fmt_ms(med(py, 'predict'))} ({fmt_ms(mins(py, 'predict'))}) "
            f"| {fmt_ms(med(rs, 'predict_sam_head_no_unc'))} ({fmt_ms(mins(rs, 'predict_sam_head_no_unc'))}) "
            f"| {ratio(med(py, 'predict'), med(rs, 'predict_sam_head_no_unc'))} "
            f"| {fmt_ms(med(rs, 'predict_no_unc'))} | {fmt_ms(med(rs, 'predict_analytic'))} | {fmt_ms(med(rs, 'predict_mc'))} |"
        )
    out.append("")
    out.append("Peak resident memory (MiB). Process: the child's peak RSS from GNU time (whole run: load, set_image, "
               "predict). set_image: `VmHWM` after the first set_image, the high-water mark being reset just before it "
               "(weights and runtime libraries included). Increment: that peak minus `VmRSS` just before set_image "
               "(activations and workspace of set_image alone).\n")
    out.append("| config | input | threads | process PyTorch | process Rust | set_image peak PyTorch | set_image peak Rust "
               "| increment PyTorch | increment Rust | Rust ≤ PyTorch (peak / increment) | IoU max abs diff |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        py, rs = r["pytorch"], r["rust"]
        pm, rm = py["memory_kb"], rs["memory_kb"]
        sp, sr = pm.get("set_image_peak_vmhwm"), rm.get("set_image_peak_vmhwm")
        ip = None if sp is None else sp - pm["rss_before_set_image"]
        ir = None if sr is None else sr - rm["rss_before_set_image"]
        yn = lambda x, y: "–" if x is None or y is None else ("yes" if y <= x else "**no**")  # noqa: E731
        out.append(
            f"| {r['config']} | {r['image_size']}² | {r['threads']} | {mib(r['pytorch_maxrss_kb'])} | {mib(r['rust_maxrss_kb'])} "
            f"| {mib(sp)} | {mib(sr)} | {mib(ip)} | {mib(ir)} | {yn(sp, sr)} / {yn(ip, ir)} "
            f"| {r['check']['iou_max_abs_diff']:.2e} |"
        )
    dist = [f"{r['config']}/{r['threads']}t" for r in rows
            if max(r["pytorch_run"]["others_cores"], r["rust_run"]["others_cores"]) > 0.1]
    out.append("")
    out.append("Other processes' CPU during the runs: "
               + (f"**above 0.1 core in {', '.join(dist)}: those times are disturbed, rerun.**" if dist
                  else "below 0.1 core in every run."))
    return "\n".join(out) + "\n"


def cross_check(py, rs) -> dict:
    a, b = py["outputs"]["sam_head_no_unc"], rs["outputs"]["sam_head_no_unc"]
    d = max(abs(x - y) for x, y in zip(a["iou"], b["iou"]))
    res = {
        "iou_pytorch": a["iou"], "iou_rust": b["iou"], "iou_max_abs_diff": d,
        "low_res_mean": [a["low_res_mean"], b["low_res_mean"]],
        "low_res_abs_mean": [a["low_res_abs_mean"], b["low_res_abs_mean"]],
        "mask_positive_pixels": [a["mask_positive_pixels"], b["mask_positive_pixels"]],
        "same_image": py["image_fnv1a64"] == rs["image_fnv1a64"],
    }
    res["ok"] = res["same_image"] and d < 1e-3 and abs(a["low_res_mean"] - b["low_res_mean"]) < 1e-2 * max(1.0, a["low_res_abs_mean"])
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="micro,tiny", help="comma-separated, optionally NAME:SIZE (default micro:256,tiny:1024)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20250101)
    ap.add_argument("--json", default=str(REPO / "target" / "bench_compare" / "results.json"))
    ap.add_argument("--rust-bin", help="prebuilt bench binary (default: build it with cargo bench --no-run)")
    ap.add_argument("--idle-wait", type=float, default=1800, help="seconds to wait for the machine to become idle before each run")
    ap.add_argument("--retries", type=int, default=3, help="reruns of a measurement disturbed by other processes")
    ap.add_argument("--keep", help="keep the checkpoints in this directory instead of a temporary one")
    # worker mode
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    ap.add_argument("--image-size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--threads-one", type=int, dest="threads_one", help=argparse.SUPPRESS)
    a = ap.parse_args()

    if a.torch_worker:
        a.threads = a.threads_one
        return torch_worker(a)

    rust_bin = a.rust_bin or build_rust_bench()
    configs = []
    for c in a.configs.split(","):
        name, _, size = c.partition(":")
        configs.append((name, int(size) if size else DEFAULT_SIZES.get(name, 1024)))
    threads = [int(t) for t in a.threads.split(",")]

    results = {"machine": machine_info(), "rust_bin": rust_bin, "reps": a.reps, "warmup": a.warmup, "rows": []}
    tmp = None
    if a.keep:
        workdir = Path(a.keep)
        workdir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="ruac_bench_")
        workdir = Path(tmp.name)
    out_json = Path(a.json)
    out_json.parent.mkdir(parents=True, exist_ok=True)
    try:
        for config, size in configs:
            ckpt = make_checkpoint(config, size, workdir, a.seed)
            print(f"checkpoint {config}@{size}: {ckpt.stat().st_size / 2**20:.1f} MiB", file=sys.stderr)
            for n in threads:
                env = dict(os.environ, RAYON_NUM_THREADS=str(n), OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n))
                row = {"config": config, "image_size": size, "threads": n}
                py_json, rs_json = workdir / f"py_{config}_{n}.json", workdir / f"rs_{config}_{n}.json"
                common = ["--reps", str(a.reps), "--warmup", str(a.warmup)]
                py_cmd = [sys.executable, __file__, "--torch-worker", "--weights", str(ckpt), "--config", config,
                          "--image-size", str(size), "--threads-one", str(n), "--json", str(py_json)] + common
                rs_cmd = [rust_bin, "--weights", str(ckpt), "--config", config, "--image-size", str(size),
                          "--threads", str(n), "--json", str(rs_json)] + common
                for impl, cmd in (("pytorch", py_cmd), ("rust", rs_cmd)):
                    m = measure(impl, cmd, env, workdir, a.idle_wait, a.retries)
                    row[f"{impl}_maxrss_kb"], row[f"{impl}_run"] = m["maxrss_kb"], m
                row["pytorch"] = json.loads(py_json.read_text())
                row["rust"] = json.loads(rs_json.read_text())
                row["check"] = cross_check(row["pytorch"], row["rust"])
                if not row["check"]["ok"]:
                    print(f"WARNING: outputs differ: {row['check']}", file=sys.stderr)
                results["rows"].append(row)
                out_json.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        if tmp is not None:
            tmp.cleanup()

    md = table(results["rows"])
    results["markdown"] = md
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    m = results["machine"]
    print(f"\nMachine: {m.get('Model name')} ({m.get('CPU(s)')} CPUs); {m.get('rustc')}; candle-core {m.get('candle-core')}; "
          f"torch {m.get('torch')}; commit {m.get('git_commit', '?')[:10]}"
          f"{' + uncommitted model changes' if m.get('git_dirty_model_files') else ''}; reps {a.reps}, warm-up {a.warmup}\n")
    print(md)
    print(f"JSON: {out_json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
