#!/usr/bin/env python3
"""Real microscopy evaluation domains for the LiteMedSAM + RUAC model card.

The PyPI wheel of StarDist (BSD-3-Clause) ships one annotated fluorescence image of cell nuclei
from the 2018 Data Science Bowl (`stardist/data/images/img2d.tif` with its label image
`mask2d.tif`; Caicedo et al., Nature Methods 2019). This script fetches the wheel with pip
(no install, no torch), cuts the 512x512 image into four 256x256 tiles (LiteMedSAM's input
size) and writes two `mask_folder` domains (docs/EVALUATION.md) for `trainer eval`:

  OUT/nuclei/        the tiles as they are (grey replicated to RGB), one mask PNG per nucleus
  OUT/nuclei-shift/  the same tiles under a microscope shift: inverted contrast (bright-field
                     look), gamma 0.6, Gaussian blur sigma 1 and Gaussian noise sigma 12 (seeded)

Nuclei smaller than --min-area pixels inside a tile (slivers cut by the tile border) are left out.

    python tools/microscopy_eval_set.py --out runs/domains
Needs numpy and Pillow.
"""
import argparse
import glob
import io
import os
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image, ImageFilter

WHEEL = "stardist==0.9.2"


def wheel(cache):
    found = glob.glob(os.path.join(cache, "stardist-0.9.2-*.whl"))
    if not found:
        os.makedirs(cache, exist_ok=True)
        # Any platform's wheel has the same data files; pick one pip accepts without building.
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", WHEEL, "-d", cache])
        found = glob.glob(os.path.join(cache, "stardist-0.9.2-*.whl"))
    if not found:
        sys.exit(f"no stardist wheel in {cache}")
    return found[0]


def read_tif(z, name):
    a = np.array(Image.open(io.BytesIO(z.read(f"stardist/data/images/{name}"))))
    if a.ndim != 2:
        sys.exit(f"{name}: expected a 2-D image, got {a.shape}")
    return a


def shift(tile, rng):
    x = 255.0 - tile.astype(np.float64)
    x = 255.0 * (x / 255.0) ** 0.6
    x = np.asarray(Image.fromarray(np.clip(x, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0)), np.float64)
    x = x + rng.normal(0.0, 12.0, x.shape)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/domains")
    ap.add_argument("--cache", default="target/weights")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--min-area", type=int, default=30)
    ap.add_argument("--seed", type=int, default=2018)
    a = ap.parse_args()
    z = zipfile.ZipFile(wheel(a.cache))
    img, lab = read_tif(z, "img2d.tif"), read_tif(z, "mask2d.tif")
    if img.shape != lab.shape:
        sys.exit(f"image {img.shape} and labels {lab.shape} differ")
    if img.max() > 255:
        img = (255.0 * img / img.max()).astype(np.uint8)
    img = img.astype(np.uint8)
    rng = np.random.default_rng(a.seed)
    t = a.tile
    counts = {"nuclei": 0, "nuclei-shift": 0}
    for ty in range(img.shape[0] // t):
        for tx in range(img.shape[1] // t):
            name = f"tile_{ty}{tx}"
            gi = img[ty * t:(ty + 1) * t, tx * t:(tx + 1) * t]
            gl = lab[ty * t:(ty + 1) * t, tx * t:(tx + 1) * t]
            for dom, g in (("nuclei", gi), ("nuclei-shift", shift(gi, rng))):
                d = os.path.join(a.out, dom)
                os.makedirs(os.path.join(d, "images"), exist_ok=True)
                os.makedirs(os.path.join(d, "masks", name), exist_ok=True)
                Image.fromarray(np.stack([g] * 3, -1)).save(os.path.join(d, "images", f"{name}.png"))
                for k in np.unique(gl):
                    m = gl == k
                    if k == 0 or m.sum() < a.min_area:
                        continue
                    Image.fromarray((m * 255).astype(np.uint8)).save(os.path.join(d, "masks", name, f"{int(k)}.png"))
                    counts[dom] += 1
    print(f"wrote {a.out}/nuclei and {a.out}/nuclei-shift: 4 tiles, {counts['nuclei']} nuclei each")


if __name__ == "__main__":
    main()
