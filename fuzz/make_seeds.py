#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/seeds/<target>/) from the committed fixtures,
plus a few small hand-made files in each format (a PyTorch archive is written here without
torch: the same zip layout and pickle opcodes). Run from the repository root:

    python3 fuzz/make_seeds.py
"""
import io, json, os, pickle, shutil, struct, sys, types, zipfile, collections
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "crates/ruac-core/tests/fixtures"
OUT = ROOT / "fuzz/seeds"


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


# --- a torch-free writer of PyTorch's zip format ------------------------------------------
torch = types.ModuleType("torch")
torch_utils = types.ModuleType("torch._utils")
sys.modules["torch"], sys.modules["torch._utils"] = torch, torch_utils


def _rebuild_tensor_v2(*a):
    raise RuntimeError("never called")


_rebuild_tensor_v2.__module__ = "torch._utils"
torch_utils._rebuild_tensor_v2 = _rebuild_tensor_v2
for st in ("FloatStorage", "HalfStorage", "LongStorage"):
    cls = type(st, (), {"__module__": "torch"})
    setattr(torch, st, cls)


class Storage:
    def __init__(self, key, kind, numel):
        self.key, self.kind, self.numel = key, kind, numel


class Tensor:
    def __init__(self, storage, shape, offset=0, stride=None):
        self.storage, self.shape, self.offset = storage, shape, offset
        if stride is None:
            stride, acc = [], 1
            for d in reversed(shape):
                stride.insert(0, acc)
                acc *= d
        self.stride = tuple(stride)

    def __reduce__(self):
        return (_rebuild_tensor_v2, (self.storage, self.offset, tuple(self.shape), self.stride, False, collections.OrderedDict()))


class P(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", getattr(torch, obj.kind), obj.key, "cpu", obj.numel)
        return None


def pt_archive(name, tensors, wrap_model=True):
    """tensors: {name: (shape, kind, bytes)}"""
    sd, blobs = collections.OrderedDict(), {}
    for i, (k, (shape, kind, data)) in enumerate(tensors.items()):
        numel = 1
        for d in shape:
            numel *= d
        sd[k] = Tensor(Storage(str(i), kind, numel), list(shape))
        blobs[str(i)] = data
    obj = {"model": sd} if wrap_model else sd
    buf = io.BytesIO()
    P(buf, protocol=2).dump(obj)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", buf.getvalue())
        z.writestr(f"{name}/byteorder", "little")
        for k, v in blobs.items():
            z.writestr(f"{name}/data/{k}", v)
        z.writestr(f"{name}/version", "3\n")
    return out.getvalue()


def f32(*vals):
    return struct.pack(f"<{len(vals)}f", *vals)


def npy(shape, data, descr="<f4"):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(map(str, shape)) + ("," if len(shape) == 1 else ""))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    # .pt: a small SAM-like state dict, wrapped in "model" and bare, f32 / f16 / int64, an
    # offset view, a Fortran-order matrix.
    small = {
        "image_encoder.trunk.patch_embed.proj.weight": ((2, 3, 1, 1), "FloatStorage", f32(*range(6))),
        "image_encoder.trunk.blocks.0.norm1.weight": ((2,), "FloatStorage", f32(1, 1)),
        "sam_mask_decoder.iou_prediction_head.layers.0.weight": ((2, 2), "HalfStorage", b"\x00\x3c" * 4),
        "num_batches_tracked": ((), "LongStorage", struct.pack("<q", 7)),
    }
    put("pt_zip", "small_model.pt", pt_archive("small", small))
    put("pt_zip", "small_bare.pt", pt_archive("bare", small, wrap_model=False))
    sam1 = {
        "image_encoder.patch_embed.proj.weight": ((4, 3, 2, 2), "FloatStorage", f32(*[0.5] * 48)),
        "image_encoder.neck.0.weight": ((2, 4, 1, 1), "FloatStorage", f32(*[0.1] * 8)),
        "mask_decoder.iou_token.weight": ((1, 2), "FloatStorage", f32(1, 2)),
        "mask_decoder.mask_tokens.weight": ((4, 2), "FloatStorage", f32(*[0] * 8)),
        "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix": ((2, 1), "FloatStorage", f32(1, 2)),
    }
    put("sam1_pth", "small_sam1.pth", pt_archive("sam1", sam1, wrap_model=False))
    put("sam1_pth", "sam1_tiny_tinyvit.pt", (FIX / "sam1_tiny_tinyvit.pt").read_bytes())
    # safetensors: the committed head (10 KB) and a two-tensor file with metadata.
    put("safetensors", "ruac_micro_head.safetensors", (FIX / "ruac_micro_head.safetensors").read_bytes())
    hdr = json.dumps({
        "__metadata__": {"ruac_image_size": "128", "ruac_config": "micro"},
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "sam_mask_decoder.pixel_bndl.linear.bias": {"dtype": "F16", "shape": [1, 2], "data_offsets": [8, 12]},
    }).encode()
    put("safetensors", "two.safetensors", struct.pack("<Q", len(hdr)) + hdr + f32(1, 2) + b"\x00\x3c\x00\x3c")
    # PNG masks: DAVIS palette annotations, mask folder PNGs (grey, RGB, 16-bit if any).
    for p in sorted((FIX / "data/davis/Annotations").rglob("*.png"))[:6]:
        put("png_mask", f"davis_{p.parent.name}_{p.name}", p.read_bytes())
    for p in sorted((FIX / "data/mask_folder/masks").rglob("*.png")):
        put("png_mask", f"folder_{p.parent.name}_{p.name}", p.read_bytes())
    # Images: the small fixture JPEGs and PNGs.
    for p in sorted((FIX / "data").rglob("*")):
        if p.suffix in (".jpg", ".png") and p.stat().st_size < 8192 and "Annotations" not in str(p):
            put("image", f"{p.parent.name}_{p.name}", p.read_bytes())
    # COCO and SA-1B JSON (the fuzz targets place them beside 32x24 / 30x20 images).
    put("coco_json", "instances.json", (FIX / "data/coco/instances.json").read_bytes())
    put("coco_json", "tiny.json", json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "height": 24, "width": 32}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[2, 2, 20, 3, 10, 15]]},
            {"id": 2, "image_id": 1, "iscrowd": 1, "segmentation": {"size": [24, 32], "counts": [100, 50, 618]}},
            {"id": 3, "image_id": 1, "segmentation": {"size": [24, 32], "counts": "P3;80i0"}},
        ]}))
    for p in sorted((FIX / "data/sa1b").glob("*.json")):
        put("sa1b_json", p.name, p.read_bytes())
    # RLE: two bytes (height, width modulo 24) then a counts string or mask bits.
    cases = json.loads((FIX / "data/rle.json").read_text())["cases"]
    for i, c in enumerate(cases[:8]):
        put("rle", f"case{i}", bytes([(c["h"] - 1) % 24, (c["w"] - 1) % 24]) + c["string"][:200].encode())
    put("rle", "bits", bytes([7, 9]) + bytes(range(0, 255, 7)))
    # .npy predictions: float32 and float64, 1-D, 2-D, scalar, big-endian.
    put("npy", "prob_f32.npy", npy((3, 4), f32(*[i / 12 for i in range(12)])))
    put("npy", "unc_f64.npy", npy((2, 2), struct.pack("<4d", 0.1, 0.2, 0.3, 0.4), "<f8"))
    put("npy", "vec.npy", npy((5,), f32(1, 2, 3, 4, 5)))
    put("npy", "scalar.npy", npy((), f32(1)))
    put("npy", "big_endian.npy", npy((2,), struct.pack(">2f", 1, 2), ">f4"))
    # Manifests and training configs (first line: `;`-separated --set overrides).
    for p in sorted((ROOT / "configs").glob("*.toml")):
        text = p.read_text()
        if "[[domain]]" in text:
            put("manifest", p.name, text)
        else:
            put("train_config", p.name, "train.steps=8;lr.head=[1e-3, 1e-3];weights.adv_from = 0.5\n" + text)


main()
