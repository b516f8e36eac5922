#!/usr/bin/env python3
"""Convert a segmentation dataset into the SAM 2 video-object folder layout that the paper's
zero-shot protocol uses (each image a one-frame video):

    OUT/JPEGImages/<seq>/00000.jpg
    OUT/Annotations/<seq>/00000.png   palette PNG, pixel value = object id (0 = background)

Sources:
  coco        COCO instances JSON (polygons, uncompressed or compressed RLE), e.g. LVIS,
              TrashCan, ZeroWaste-f, iShape, NDD20, PPDLS, ... (most SAM zero-shot sets)
  mask-folder images/<name>.<ext> with masks/<name>/<k>.png (one binary mask per object)
  video       a SAM 2 / MOSE / DAVIS folder (JPEGImages/<seq>/*.jpg + Annotations/<seq>/*.png):
              every --stride-th annotated frame becomes its own one-frame sequence

Objects smaller than --min-area pixels are dropped; at most --max-objects per image are
kept (largest first; 255 is DAVIS's "void" and never used as an id).

Requires numpy and pillow; pycocotools for coco. Example:
  python tools/convert_to_sam2_folder.py coco --json ann.json --images imgs/ --out data/trashcan
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

PALETTE = [0, 0, 0] + [int(v) for i in range(1, 256) for v in ((i * 67) % 256, (i * 151) % 256, (i * 199) % 256)]


def write_sample(out: Path, seq: str, image: Image.Image, masks: list[np.ndarray], min_area: int, max_objects: int) -> int:
    masks = [m for m in masks if int(m.sum()) >= min_area]
    masks.sort(key=lambda m: -int(m.sum()))
    masks = masks[:max_objects]
    if not masks:
        return 0
    h, w = masks[0].shape
    label = np.zeros((h, w), dtype=np.uint8)
    # Later (smaller) objects are painted over larger ones, so small objects stay visible.
    for k, m in enumerate(masks, start=1):
        label[m.astype(bool)] = k
    (out / "JPEGImages" / seq).mkdir(parents=True, exist_ok=True)
    (out / "Annotations" / seq).mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(out / "JPEGImages" / seq / "00000.jpg", quality=95)
    png = Image.fromarray(label, mode="P")
    png.putpalette(PALETTE)
    png.save(out / "Annotations" / seq / "00000.png")
    return len(masks)


def from_coco(args) -> tuple[int, int]:
    from pycocotools import mask as mask_utils

    data = json.loads(Path(args.json).read_text())
    by_image: dict[int, list] = {}
    for a in data.get("annotations", []):
        if a.get("iscrowd", 0) and not args.keep_crowd:
            continue
        by_image.setdefault(a["image_id"], []).append(a)
    n_img = n_obj = 0
    for info in data.get("images", []):
        path = Path(args.images) / info["file_name"]
        if not path.exists():
            print(f"skip {info['file_name']}: image missing", file=sys.stderr)
            continue
        h, w = info["height"], info["width"]
        masks = []
        for a in by_image.get(info["id"], []):
            seg = a["segmentation"]
            if isinstance(seg, list):
                rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
            elif isinstance(seg.get("counts"), list):
                rle = mask_utils.frPyObjects(seg, h, w)
            else:
                rle = seg
            masks.append(mask_utils.decode(rle))
        k = write_sample(Path(args.out), Path(info["file_name"]).stem, Image.open(path), masks, args.min_area, args.max_objects)
        n_img += k > 0
        n_obj += k
    return n_img, n_obj


def from_mask_folder(args) -> tuple[int, int]:
    root = Path(args.root)
    n_img = n_obj = 0
    for img_path in sorted((root / "images").iterdir()):
        mdir = root / "masks" / img_path.stem
        if not mdir.is_dir():
            continue
        image = Image.open(img_path)
        masks = []
        for mp in sorted(mdir.glob("*.png")):
            m = np.array(Image.open(mp).convert("L")) > 0
            if m.shape != (image.height, image.width):
                print(f"skip {mp}: mask {m.shape} != image {(image.height, image.width)}", file=sys.stderr)
                continue
            masks.append(m)
        k = write_sample(Path(args.out), img_path.stem, image, masks, args.min_area, args.max_objects)
        n_img += k > 0
        n_obj += k
    return n_img, n_obj


def from_video(args) -> tuple[int, int]:
    root = Path(args.root)
    n_img = n_obj = 0
    for seq in sorted((root / "Annotations").iterdir()):
        frames = sorted(seq.glob("*.png"))[:: args.stride]
        for f in frames:
            jpg = root / "JPEGImages" / seq.name / (f.stem + ".jpg")
            if not jpg.exists():
                continue
            label = np.array(Image.open(f))  # palette indices = object ids
            ids = [i for i in np.unique(label) if i not in (0, 255)]
            masks = [label == i for i in ids]
            k = write_sample(Path(args.out), f"{seq.name}_{f.stem}", Image.open(jpg), masks, args.min_area, args.max_objects)
            n_img += k > 0
            n_obj += k
    return n_img, n_obj


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="source", required=True)
    c = sub.add_parser("coco")
    c.add_argument("--json", required=True)
    c.add_argument("--images", required=True)
    c.add_argument("--keep-crowd", action="store_true")
    m = sub.add_parser("mask-folder")
    m.add_argument("--root", required=True)
    v = sub.add_parser("video")
    v.add_argument("--root", required=True)
    v.add_argument("--stride", type=int, default=10)
    for p in (c, m, v):
        p.add_argument("--out", required=True)
        p.add_argument("--min-area", type=int, default=100)
        p.add_argument("--max-objects", type=int, default=50)
    args = ap.parse_args()
    n_img, n_obj = {"coco": from_coco, "mask-folder": from_mask_folder, "video": from_video}[args.source](args)
    print(f"wrote {n_img} images with {n_obj} objects to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
