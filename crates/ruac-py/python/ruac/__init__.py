"""ruac: RUAC (SAM 2.1 / SAM 1 with a Bayesian per-pixel head) in Rust, from Python.

``Predictor`` segments an image from clicks, boxes and masks like SAM 2's
``SAM2ImagePredictor`` and returns, besides the masks, a per-pixel uncertainty;
``ruac.metrics`` scores masks and uncertainty maps with the code of ``trainer eval``.

Errors raised by the Rust code carry its message: ``ValueError`` for bad input (arrays,
prompts, a file that is not a usable checkpoint), ``TypeError`` for an argument of the
wrong type or dtype, ``OSError`` (``FileNotFoundError``, ...) when a file cannot be read,
``RuntimeError`` for ``predict`` before ``set_image`` and internal failures.
"""

from ._native import Prediction, Predictor, __version__, load_state_dict
from . import metrics

__all__ = ["Predictor", "Prediction", "load_state_dict", "metrics", "__version__"]
