#!/usr/bin/env python3
"""Writes a synthetic SAM 2-format domain (N images of SIZE x SIZE, K objects each: discs
and rectangles over a gradient) for timing `trainer eval` per object. Needs numpy, pillow.

  python tools/make_bench_domain.py --out /tmp/benchdom --images 10 --objects 3 --size 256
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--objects", type=int, default=3)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    root = Path(a.out) / "toy"
    s = a.size
    y, x = np.mgrid[0:s, 0:s]
    for i in range(a.images):
        img = np.stack([x * 200 / s + 20, y * 180 / s + 30, 120 + 0 * x], -1).astype(np.float64)
        label = np.zeros((s, s), np.uint8)
        for k in range(1, a.objects + 1):
            cx, cy = rng.uniform(0.2, 0.8, 2) * s
            r = rng.uniform(0.08, 0.2) * s
            m = (x - cx) ** 2 + (y - cy) ** 2 <= r * r if k % 2 else (np.abs(x - cx) <= r) & (np.abs(y - cy) <= 0.6 * r)
            img[m] = rng.uniform(0, 255, 3)
            label[m] = k
        seq = f"img{i:03d}"
        (root / "JPEGImages" / seq).mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / seq).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / "JPEGImages" / seq / "00000.jpg", quality=95)
        Image.fromarray(label).save(root / "Annotations" / seq / "00000.png")
    (Path(a.out) / "domains.toml").write_text('[[domain]]\nname = "toy"\npath = "toy"\nformat = "sam2"\n')
    print(f"wrote {a.images} images to {root}")


if __name__ == "__main__":
    main()
