"""Type stubs of ruac (the compiled module is ``ruac._native``)."""

from os import PathLike
from typing import Any, Dict, Iterator, List, Literal, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import metrics as metrics

__version__: str

_Path = Union[str, "PathLike[str]"]
_F32 = npt.NDArray[np.float32]

class Prediction:
    """What ``Predictor.predict`` returns; unpacks as
    ``masks, iou_predictions, low_res_masks, uncertainty``."""

    masks: _F32
    """``(C, H, W)``: 0/1 masks, or logits with ``return_logits=True``."""
    iou_predictions: _F32
    """``(C,)`` predicted IoU of each mask."""
    low_res_masks: _F32
    """``(C, L, L)`` low-resolution logits clamped to +-32 (usable as ``mask_input``)."""
    uncertainty: _F32
    """``(C, H, W)`` per-pixel uncertainty, in ``uncertainty_unit``."""
    uncertainty_low_res: _F32
    """``(C, L, L)`` the uncertainty at the low resolution."""
    object_score_logit: float
    """Object-score logit (> 0: an object is present); ``inf`` for SAM 1 models."""
    mask_tokens: List[int]
    """The decoder's mask token behind each mask (0: the single-mask token)."""
    best: int
    """Index of the mask with the highest predicted IoU."""
    uncertainty_mode: Literal["monte_carlo", "analytic", "sam_sigmoid_entropy"]
    uncertainty_unit: str
    uncertainty_max: float
    """The largest value the uncertainty can take (ln 2 in nats, or 1)."""
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[_F32]: ...
    def __getitem__(self, index: int) -> _F32: ...

class Predictor:
    """SAM 2.1 / SAM 1 / RUAC predictor shaped like ``SAM2ImagePredictor``, with RUAC's
    per-pixel uncertainty. Runs on the CPU; calls release the GIL."""

    @staticmethod
    def from_checkpoint(
        path: _Path, config: Optional[str] = None, image_size: Optional[int] = None
    ) -> "Predictor":
        """Loads SAM 2.1 / RUAC ``.pt`` / ``.safetensors`` or SAM 1 family ``.pth`` /
        ``.safetensors``; ``config`` and ``image_size`` are inferred when omitted."""
    def set_image(self, image: npt.ArrayLike) -> None:
        """Encodes an ``(H, W, 3)`` uint8 RGB image."""
    def predict(
        self,
        point_coords: Optional[npt.ArrayLike] = None,
        point_labels: Optional[npt.ArrayLike] = None,
        box: Optional[npt.ArrayLike] = None,
        mask_input: Optional[npt.ArrayLike] = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        uncertainty: Literal["mc", "analytic"] = "mc",
        mc_samples: int = 20,
        seed: int = 0,
    ) -> Prediction:
        """Masks, IoU predictions, low-resolution logits and per-pixel uncertainty for one
        object, prompts in image pixels."""
    @property
    def mask_threshold(self) -> float: ...
    @property
    def model_name(self) -> str: ...
    @property
    def family(self) -> Literal["sam2", "sam1"]: ...
    @property
    def has_ruac_head(self) -> bool: ...
    @property
    def image_size(self) -> int: ...
    @property
    def low_res_size(self) -> int: ...
    @property
    def is_image_set(self) -> bool: ...
    @property
    def orig_hw(self) -> Optional[Tuple[int, int]]: ...

def load_state_dict(path: _Path) -> Dict[str, npt.NDArray[Any]]:
    """The tensors of a checkpoint file by name (``.pt`` / ``.pth`` read without torch or
    pickle execution, or ``.safetensors``); floats as float32 (float64 kept)."""
