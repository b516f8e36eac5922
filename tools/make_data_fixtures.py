#!/usr/bin/env python3
"""Tiny datasets and pycocotools reference masks for the ruac-core dataset readers.

Writes crates/ruac-core/tests/fixtures/data/ (read by crates/ruac-core/tests/data_*.rs):

* davis/        SAM 2 / DAVIS / MOSE video-object layout, JPEGImages/<seq>/<frame>.jpg +
                Annotations/<seq>/<frame>.png (palette PNGs whose indices are object ids,
                255 = void), with broken frames (truncated PNG, missing JPEG, wrong size,
                RGB annotation, no objects).
* coco/         images/*.jpg + instances.json: polygons (single and multi-part, partly outside
                the image), uncompressed RLE, compressed RLE, a crowd annotation, and the
                malformed cases (RLE of the wrong length, unknown image id, missing image
                file, RLE of the wrong size, bad polygon, bad counts string, empty object).
* sa1b/         SA-1B per-image JSON next to its JPEG, with a wrong-size and a wrong-length
                mask, and a JSON whose JPEG is missing.
* mask_folder/  images/<name>.<ext> + masks/<name>/<k>.png and masks/<name>_<k>.png, with a
                mask of the wrong size, an empty mask, and an image without masks.
* expected.json the masks the readers must produce, computed with pycocotools
                (COCO.annToMask = frPyObjects + merge + decode) and numpy: for each sample,
                [{id, counts}] with `counts` the uncompressed column-major (Fortran order)
                run lengths, starting with a background run, as pycocotools uses.
* polygons.json a polygon-rasterisation stress test: random polygons (2-decimal and full
                precision coordinates, partly outside the canvas, with ties on the 1/5 pixel
                grid), each with pycocotools' merged compressed RLE string.
* rle.json      random masks with pycocotools' compressed RLE string and uncompressed counts
                (checks our LEB128-like decoder and encoder byte for byte).

Deterministic: re-running reproduces the files byte for byte (apart from JPEG encoder
changes across Pillow versions; the tests only use JPEG sizes, not pixel values).

Run: $VENV/bin/python tools/make_data_fixtures.py
"""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "crates/ruac-core/tests/fixtures/data"
H, W = 24, 32  # image height, width

rng = np.random.default_rng(20260510)


# ---------------------------------------------------------------------------- helpers
def counts_fortran(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts of a HxW binary mask (column-major, background first)."""
    flat = np.asarray(mask, dtype=np.uint8).flatten(order="F")
    counts, prev, run = [], 0, 0
    for v in flat:
        if v != prev:
            counts.append(run)
            run, prev = 0, v
        run += 1
    counts.append(run)
    return [int(c) for c in counts]


def rle_string(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode("ascii")


def write_jpeg(path: Path, h: int = H, w: int = W, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([(xx * 7 + seed * 13) % 256, (yy * 9 + seed * 5) % 256, np.full_like(xx, 90 + seed)], -1)
    Image.fromarray(img.astype(np.uint8)).save(path, quality=75)


def write_png(path: Path, img: Image.Image, **kw) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=False, **kw)


def davis_palette() -> list[int]:
    """The 256-entry DAVIS palette (bit-interleaved colour map, as in the DAVIS toolkit)."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def disk(cy: float, cx: float, r: float, h: int = H, w: int = W) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def obj_entry(id_: int, mask: np.ndarray) -> dict:
    mask = np.asarray(mask, dtype=bool)
    assert mask.any(), f"object {id_} is empty"
    return {"id": int(id_), "area": int(mask.sum()), "counts": counts_fortran(mask)}


# ---------------------------------------------------------------------------- DAVIS / SAM 2
def make_davis(expected: dict) -> None:
    d = OUT / "davis"
    exp = {}
    pal = davis_palette()

    def label_png(path: Path, lab: np.ndarray, palette=pal, **kw):
        im = Image.fromarray(lab.astype(np.uint8), mode="P")
        im.putpalette(palette)
        write_png(path, im, **kw)

    # bear: two objects (ids 1 and 2) and a void band (255) on frame 00000; 3 frames.
    for f in range(3):
        lab = np.zeros((H, W), np.uint8)
        lab[disk(8 + f, 9 + f, 5)] = 1
        lab[4:20, 20 + f:28] = 2
        if f == 0:
            lab[22:, :] = 255  # void / ignore
        name = f"{f:05d}"
        write_jpeg(d / "JPEGImages/bear" / f"{name}.jpg", seed=f)
        if f == 2:
            # broken frame: a truncated palette PNG
            buf = io.BytesIO()
            im = Image.fromarray(lab, mode="P")
            im.putpalette(pal)
            im.save(buf, format="PNG")
            p = d / "Annotations/bear" / f"{name}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
            continue
        label_png(d / "Annotations/bear" / f"{name}.png", lab)
        exp[f"bear/{name}"] = {
            "objects": [obj_entry(i, lab == i) for i in (1, 2)],
            "ignore_area": int((lab == 255).sum()),
            "ignore_counts": counts_fortran(lab == 255) if f == 0 else None,
        }
    # a JPEG frame without annotation: not a sample, not a skip
    write_jpeg(d / "JPEGImages/bear/00003.jpg", seed=3)

    # cat: a 4-colour palette PNG (Pillow writes it 2-bit packed) with ids 1 and 3,
    # an 8-bit grayscale PNG whose values are ids (5, 7), an annotation without JPEG,
    # an annotation of the wrong size, an RGB annotation, and an all-background frame.
    lab = np.zeros((H, W), np.uint8)
    lab[2:10, 3:30] = 1
    lab[12:22, 5:15] = 3
    write_jpeg(d / "JPEGImages/cat/00000.jpg", seed=4)
    label_png(d / "Annotations/cat/00000.png", lab, palette=pal[:12])
    exp["cat/00000"] = {"objects": [obj_entry(i, lab == i) for i in (1, 3)], "ignore_area": 0, "ignore_counts": None}

    lab = np.zeros((H, W), np.uint8)
    lab[disk(12, 16, 7)] = 7
    lab[0:5, 0:6] = 5
    write_jpeg(d / "JPEGImages/cat/00001.jpg", seed=5)
    write_png(d / "Annotations/cat/00001.png", Image.fromarray(lab, mode="L"))
    exp["cat/00001"] = {"objects": [obj_entry(i, lab == i) for i in (5, 7)], "ignore_area": 0, "ignore_counts": None}

    label_png(d / "Annotations/cat/00002.png", lab)  # no JPEG: missing image
    write_jpeg(d / "JPEGImages/cat/00003.jpg", seed=6)
    label_png(d / "Annotations/cat/00003.png", np.ones((H + 2, W), np.uint8))  # wrong size
    write_jpeg(d / "JPEGImages/cat/00004.jpg", seed=7)
    write_png(d / "Annotations/cat/00004.png", Image.fromarray(np.full((H, W, 3), 128, np.uint8), mode="RGB"))
    write_jpeg(d / "JPEGImages/cat/00005.jpg", seed=8)
    label_png(d / "Annotations/cat/00005.png", np.zeros((H, W), np.uint8))  # no objects
    expected["davis"] = exp


# ---------------------------------------------------------------------------- COCO
def make_coco(expected: dict) -> None:
    d = OUT / "coco"
    images = [
        {"id": 1, "file_name": "a.jpg", "height": H, "width": W},
        {"id": 2, "file_name": "b.jpg", "height": H, "width": W},
        {"id": 3, "file_name": "missing.jpg", "height": H, "width": W},  # no file
        {"id": 4, "file_name": "c.jpg", "height": H, "width": W},  # only bad annotations
        {"id": 5, "file_name": "d.jpg", "height": H, "width": W},  # no annotations
    ]
    for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg"]):
        write_jpeg(d / "images" / name, seed=10 + i)

    m_unc = disk(10, 20, 6) & ~disk(10, 20, 2)  # a ring
    m_cmp = np.zeros((H, W), bool)
    m_cmp[0:24, 0:3] = True  # touches the first column: counts start with 0
    m_cmp[5:9, 10:31] = True
    m_crowd = np.zeros((H, W), bool)
    m_crowd[15:23, 2:12] = True
    bad_len = counts_fortran(m_unc)
    bad_len[-1] += 5  # total != h*w

    anns = [
        # 1: single polygon with 2-decimal coordinates, like COCO's
        {"id": 101, "image_id": 1, "category_id": 1, "iscrowd": 0,
         "segmentation": [[3.25, 2.5, 17.8, 4.15, 14.6, 15.33, 6.2, 12.7]]},
        # 2: two polygons, one partly outside the image (clipped)
        {"id": 102, "image_id": 1, "category_id": 2, "iscrowd": 0,
         "segmentation": [[20.0, 1.0, 30.5, 1.0, 30.5, 9.0, 20.0, 9.0],
                          [25.1, 14.2, 36.9, 18.4, 28.3, 27.6, 22.05, 20.0]]},
        # 3: uncompressed RLE
        {"id": 103, "image_id": 2, "category_id": 1, "iscrowd": 0,
         "segmentation": {"size": [H, W], "counts": counts_fortran(m_unc)}},
        # 4: compressed RLE
        {"id": 104, "image_id": 2, "category_id": 3, "iscrowd": 0,
         "segmentation": {"size": [H, W], "counts": rle_string(m_cmp)}},
        # 5: crowd (uncompressed RLE, id beyond u32 like COCO's crowd ids)
        {"id": 900100000105, "image_id": 1, "category_id": 1, "iscrowd": 1,
         "segmentation": {"size": [H, W], "counts": counts_fortran(m_crowd)}},
        # 6: RLE whose total length is not h*w
        {"id": 106, "image_id": 2, "category_id": 1, "iscrowd": 0,
         "segmentation": {"size": [H, W], "counts": bad_len}},
        # 7: unknown image id
        {"id": 107, "image_id": 999, "category_id": 1, "iscrowd": 0,
         "segmentation": [[1, 1, 5, 1, 5, 5]]},
        # 8: image whose file is missing
        {"id": 108, "image_id": 3, "category_id": 1, "iscrowd": 0,
         "segmentation": [[1, 1, 9, 1, 9, 9]]},
        # 9: RLE of the wrong size
        {"id": 109, "image_id": 4, "category_id": 1, "iscrowd": 0,
         "segmentation": {"size": [H + 1, W], "counts": [0, (H + 1) * W]}},
        # 10: polygon with an odd number of coordinates and a non-number
        {"id": 110, "image_id": 4, "category_id": 1, "iscrowd": 0,
         "segmentation": [[1.0, 2.0, "x", 4.0, 5.0]]},
        # 11: compressed RLE with a character outside '0'..'o'
        {"id": 111, "image_id": 4, "category_id": 1, "iscrowd": 0,
         "segmentation": {"size": [H, W], "counts": "0~~~"}},
        # 12: polygon entirely outside the image: area 0
        {"id": 112, "image_id": 4, "category_id": 1, "iscrowd": 0,
         "segmentation": [[40.0, 30.0, 50.0, 30.0, 50.0, 40.0]]},
        # 13: no segmentation field at all
        {"id": 113, "image_id": 4, "category_id": 1, "iscrowd": 0},
    ]
    data = {
        "info": {"description": "ruac data-reader fixture"},
        "images": images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
    }
    (d / "instances.json").write_text(json.dumps(data, indent=1) + "\n")

    # Reference masks: pycocotools' own COCO.annToMask on the valid annotations.
    coco = COCO(str(d / "instances.json"))
    exp = {}
    for img_id, name, ids in [(1, "a.jpg", [101, 102, 900100000105]), (2, "b.jpg", [103, 104])]:
        objs = []
        for aid in ids:
            m = coco.annToMask(coco.anns[aid]).astype(bool)
            e = obj_entry(aid, m)
            e["crowd"] = bool(coco.anns[aid]["iscrowd"])
            e["category"] = coco.anns[aid]["category_id"]
            objs.append(e)
        exp[name] = {"objects": objs}
    # Sanity: the RLE references decode to what we put in.
    assert (coco.annToMask(coco.anns[103]).astype(bool) == m_unc).all()
    assert (coco.annToMask(coco.anns[104]).astype(bool) == m_cmp).all()
    expected["coco"] = exp


# ---------------------------------------------------------------------------- SA-1B
def make_sa1b(expected: dict) -> None:
    d = OUT / "sa1b"
    h, w = 20, 30
    write_jpeg(d / "sa_1.jpg", h, w, seed=20)
    m1 = disk(9, 11, 6, h, w)
    m2 = np.zeros((h, w), bool)
    m2[1:19, 20:29] = True
    m3 = disk(15, 4, 3, h, w)

    def ann(id_, m, size=None, counts=None):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        return {
            "id": id_,
            "segmentation": {"size": size or [h, w], "counts": counts or rle["counts"].decode("ascii")},
            "bbox": [float(v) for v in mask_utils.toBbox(rle)],
            "area": int(m.sum()),
            "predicted_iou": 0.9,
            "point_coords": [[10.0, 9.0]],
            "stability_score": 0.95,
            "crop_box": [0.0, 0.0, float(w), float(h)],
        }

    wrong = np.zeros((h + 4, w), bool)
    wrong[3:8, 3:8] = True
    # a string whose runs sum to less than h*w
    short = mask_utils.encode(np.asfortranarray(np.ones((h, w - 1), np.uint8)))["counts"].decode("ascii")
    data = {
        "image": {"image_id": 1, "file_name": "sa_1.jpg", "height": h, "width": w},
        "annotations": [
            ann(11, m1),
            ann(12, m2),
            ann(13, wrong, size=[h + 4, w], counts=rle_string(wrong)),  # wrong size
            ann(14, m3, counts=short),  # wrong total length
            ann(15, m3),
        ],
    }
    (d / "sa_1.json").write_text(json.dumps(data) + "\n")
    data2 = {"image": {"image_id": 2, "file_name": "sa_2.jpg", "height": h, "width": w},
             "annotations": [ann(21, m1)]}
    (d / "sa_2.json").write_text(json.dumps(data2) + "\n")  # sa_2.jpg missing
    (d / "sa_3.json").write_text('{"image": {"file_name": "sa_1.jpg", "height": 20}, "annotations": 5}\n')
    expected["sa1b"] = {"sa_1": {"objects": [obj_entry(11, m1), obj_entry(12, m2), obj_entry(15, m3)]}}


# ---------------------------------------------------------------------------- mask folder
def make_mask_folder(expected: dict) -> None:
    d = OUT / "mask_folder"
    exp = {}
    # x: nested layout masks/x/<k>.png; one 8-bit L mask (255), one 1-bit mask, one P mask
    write_png(d / "images/x.png", Image.fromarray(np.full((H, W, 3), 60, np.uint8)))
    mx1 = disk(12, 10, 6)
    mx2 = np.zeros((H, W), bool)
    mx2[3:20, 18:30] = True
    mx4 = disk(5, 27, 3)
    write_png(d / "masks/x/1.png", Image.fromarray((mx1 * 255).astype(np.uint8), mode="L"))
    write_png(d / "masks/x/2.png", Image.fromarray(mx2).convert("1"))
    pm = Image.fromarray(mx4.astype(np.uint8), mode="P")
    pm.putpalette([0, 0, 0, 255, 255, 255])
    write_png(d / "masks/x/4.png", pm)
    exp["x"] = {"objects": [obj_entry(1, mx1), obj_entry(2, mx2), obj_entry(4, mx4)]}
    # y: flat layout masks/y_<k>.png; k=1 fine (RGB), k=2 wrong size, k=3 empty
    write_jpeg(d / "images/y.jpg", seed=30)
    my1 = disk(10, 16, 8)
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[my1] = [200, 30, 30]
    write_png(d / "masks/y_1.png", Image.fromarray(rgb, mode="RGB"))
    write_png(d / "masks/y_2.png", Image.fromarray(np.full((H, W + 3), 255, np.uint8), mode="L"))
    write_png(d / "masks/y_3.png", Image.fromarray(np.zeros((H, W), np.uint8), mode="L"))
    exp["y"] = {"objects": [obj_entry(1, my1)]}
    # z: an image without masks
    write_jpeg(d / "images/z.jpg", seed=31)
    expected["mask_folder"] = exp


# ---------------------------------------------------------------------------- stress tests
def random_polygon(h: int, w: int, full_precision: bool) -> list[float]:
    k = int(rng.integers(3, 12))
    cx, cy = rng.uniform(-2, w + 2), rng.uniform(-2, h + 2)
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    if rng.random() < 0.3:
        ang = rng.uniform(0, 2 * np.pi, k)  # self-intersecting
    rad = rng.uniform(0.5, max(h, w) * 0.7 + 1.0, k)
    xs, ys = cx + rad * np.cos(ang), cy + rad * np.sin(ang)
    pts = []
    for x, y in zip(xs, ys):
        mode = rng.random()
        if not full_precision:
            x, y = round(float(x), 2), round(float(y), 2)
        if mode < 0.15:  # on the 1/5 pixel grid and its rounding ties
            x = round(float(x) * 10) / 10
            y = round(float(y) * 10) / 10
        elif mode < 0.25:  # integer vertices
            x, y = float(round(float(x))), float(round(float(y)))
        pts += [float(x), float(y)]
    return pts


def make_polygons() -> None:
    cases = []
    for i in range(240):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        full = i % 3 == 2
        polys = [random_polygon(h, w, full) for _ in range(int(rng.integers(1, 4)))]
        rles = mask_utils.frPyObjects(polys, h, w)
        rle = mask_utils.merge(rles)
        m = mask_utils.decode(rle)
        cases.append({"h": h, "w": w, "polygons": polys, "counts": rle["counts"].decode("ascii"), "area": int(m.sum())})
    # hand-written edge cases: axis-aligned box, a vertex exactly on x.1 / x.3 / x.5 ties
    # (5x+0.5 at integer boundaries), degenerate (collinear) polygon, canvas-covering polygon
    extra = [
        (10, 12, [[0.0, 0.0, 12.0, 0.0, 12.0, 10.0, 0.0, 10.0]]),
        (10, 12, [[-5.0, -5.0, 20.0, -5.0, 20.0, 20.0, -5.0, 20.0]]),
        (9, 9, [[0.1, 0.3, 7.5, 0.5, 8.9, 8.7, 0.5, 7.9]]),
        (9, 9, [[1.0, 1.0, 5.0, 5.0, 8.0, 8.0]]),
        (7, 11, [[2.0, 1.0, 9.0, 1.0, 9.0, 5.0, 2.0, 5.0], [4.0, 2.0, 7.0, 2.0, 7.0, 4.0, 4.0, 4.0]]),
        (16, 16, [[8.0, 0.0, 16.0, 8.0, 8.0, 16.0, 0.0, 8.0]]),
    ]
    for h, w, polys in extra:
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
        m = mask_utils.decode(rle)
        cases.append({"h": h, "w": w, "polygons": polys, "counts": rle["counts"].decode("ascii"), "area": int(m.sum())})
    (OUT / "polygons.json").write_text(json.dumps({"cases": cases}, separators=(",", ":")) + "\n")


def make_rle() -> None:
    cases = []
    for i in range(60):
        h, w = int(rng.integers(1, 50)), int(rng.integers(1, 50))
        kind = i % 4
        if kind == 0:
            m = rng.random((h, w)) < 0.5
        elif kind == 1:
            m = disk(rng.uniform(0, h), rng.uniform(0, w), rng.uniform(1, 20), h, w)
        elif kind == 2:
            m = np.ones((h, w), bool) if i % 8 == 2 else np.zeros((h, w), bool)
        else:
            m = rng.random((h, w)) < 0.97
        enc = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        cases.append({"h": h, "w": w, "string": enc["counts"].decode("ascii"), "counts": counts_fortran(m)})
    # long runs: multi-character deltas, negative deltas
    h, w = 300, 400
    m = np.zeros((h, w), bool)
    m[:, 100:350] = True
    m[10:290, 360:361] = True
    enc = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    cases.append({"h": h, "w": w, "string": enc["counts"].decode("ascii"), "counts": counts_fortran(m)})
    (OUT / "rle.json").write_text(json.dumps({"cases": cases}, separators=(",", ":")) + "\n")


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    expected: dict = {"height": H, "width": W}
    make_davis(expected)
    make_coco(expected)
    make_sa1b(expected)
    make_mask_folder(expected)
    make_polygons()
    make_rle()
    (OUT / "expected.json").write_text(json.dumps(expected, separators=(",", ":"), sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total} bytes)")
    assert total < 200_000, total


if __name__ == "__main__":
    main()
