# %% [markdown]
# # ruac from Python: one click, a mask, and where to trust it
#
# Loads a RUAC checkpoint, encodes an image once, clicks on the object, and plots the best
# mask next to RUAC's per-pixel uncertainty. Runs as a script (`$VENV/bin/python
# predict.py --out out/`) or cell by cell in a notebook (the `# %%` markers). The defaults
# use the repository's small trained model and a gallery image; pass `--weights` for a real
# SAM 2.1 / RUAC / SAM 1 checkpoint.

# %%
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; drop this line in a notebook
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

import ruac

REPO = Path(__file__).resolve().parents[3]
parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--weights", default=REPO / "models" / "ruac-micro.safetensors", type=Path)
parser.add_argument("--image", default=REPO / "web" / "gallery" / "chelsea.jpg", type=Path)
parser.add_argument("--point", default=(190.0, 130.0), nargs=2, type=float, metavar=("X", "Y"))
parser.add_argument("--out", default=Path("predict-out"), type=Path)
args = parser.parse_args()

# %% Load the model (format and configuration are read from the file) and encode the image.
predictor = ruac.Predictor.from_checkpoint(args.weights)
print(predictor)
image = np.asarray(Image.open(args.image).convert("RGB"))
predictor.set_image(image)

# %% One foreground click; SAM2ImagePredictor's arguments, plus RUAC's uncertainty.
masks, scores, logits, uncertainty = predictor.predict(
    point_coords=np.array([args.point]),
    point_labels=np.array([1]),
    multimask_output=True,
    uncertainty="mc",  # entropy of 20 seeded Weibull draws, in nats (0 to ln 2)
    mc_samples=20,
)
best = int(np.argmax(scores))
mask, unc = masks[best] > 0, uncertainty[best]
print(f"mask {best}: predicted IoU {scores[best]:.3f}, {mask.sum()} px, mean uncertainty {unc.mean():.4f} nats")

# %% Refine with the low-resolution logits as a mask prompt, as with SAM 2.
refined = predictor.predict(
    point_coords=np.array([args.point]), point_labels=np.array([1]), mask_input=logits[best][None], multimask_output=False
)
print(f"refined: predicted IoU {refined.iou_predictions[0]:.3f}")

# %% Plot: the image with the mask, and the uncertainty map.
args.out.mkdir(parents=True, exist_ok=True)
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].imshow(image)
axes[0].imshow(np.ma.masked_where(~mask, mask), cmap="winter", alpha=0.5)
axes[0].plot(*args.point, "r*", markersize=12)
axes[0].set_title(f"mask {best}, predicted IoU {scores[best]:.2f}")
im = axes[1].imshow(unc, cmap="inferno", vmin=0, vmax=np.log(2))
axes[1].set_title("per-pixel uncertainty")
fig.colorbar(im, ax=axes[1], label="entropy (nats)")
for ax in axes:
    ax.axis("off")
fig.tight_layout()
fig.savefig(args.out / "predict.png", dpi=100)

# %% The mask and the uncertainty map as images of their own.
Image.fromarray((mask * 255).astype(np.uint8)).save(args.out / "mask.png")
colored = plt.get_cmap("inferno")(unc / np.log(2))[..., :3]
Image.fromarray((colored * 255).astype(np.uint8)).save(args.out / "uncertainty.png")
print(f"wrote {args.out / 'predict.png'}, mask.png, uncertainty.png")
