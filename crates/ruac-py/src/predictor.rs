//! `ruac.Predictor` and `ruac.Prediction`: ruac-core's [`Predictor`] behind
//! `SAM2ImagePredictor`'s interface (`sam2/sam2_image_predictor.py`).
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use candle_core::{DType, Device, Tensor};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PyTuple};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::predictor::{BaseModel, PointLabel, Predictor, Prompt, UncertaintyMode};

use crate::convert::{array, rgb_image};
use crate::errors::{candle, to_py};

/// Segments an image from point, box and mask prompts, with RUAC's per-pixel uncertainty.
///
/// Mirrors ``sam2.sam2_image_predictor.SAM2ImagePredictor``: ``set_image`` encodes an image
/// once, each ``predict`` runs only the prompt encoder and mask decoder. Build it with
/// ``Predictor.from_checkpoint``. Calls release the GIL; one predictor serves one call at a
/// time (concurrent calls from several threads wait for each other).
#[pyclass(frozen, module = "ruac", name = "Predictor")]
pub struct PyPredictor {
    inner: Mutex<Predictor>,
    model_name: String,
    family: &'static str,
    ruac_head: bool,
    image_size: usize,
    low_res_size: usize,
}

impl PyPredictor {
    fn lock(&self) -> std::sync::MutexGuard<'_, Predictor> {
        // A panic inside ruac-core surfaces as a Python exception; the cached features stay
        // whole (they are replaced, never edited), so the predictor stays usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[pymethods]
impl PyPredictor {
    /// Loads a checkpoint file, any format the ``trainer`` loads: SAM 2.1 and RUAC ``.pt`` or
    /// ``.safetensors``, SAM 1 family ``.pth`` / ``.safetensors`` (SAM ViT-B/L/H, MobileSAM,
    /// LiteMedSAM, with or without RUAC's head). The format is read from the content.
    ///
    /// ``config`` names the configuration (``tiny``, ``small``, ``base_plus``, ``large``,
    /// ``micro``; ``vit_b``, ``vit_l``, ``vit_h``, ``mobile_sam``, ``lite_medsam``); it is
    /// inferred from the tensor shapes when omitted. ``image_size`` overrides the encoder's
    /// input resolution (SAM 2.1 only). Runs on the CPU.
    ///
    /// Raises ``FileNotFoundError`` / ``OSError`` when the file cannot be read, ``ValueError``
    /// when it is not a usable checkpoint (the message lists every missing, unexpected or
    /// mis-shaped tensor).
    #[staticmethod]
    #[pyo3(signature = (path, config=None, image_size=None))]
    fn from_checkpoint(py: Python<'_>, path: PathBuf, config: Option<String>, image_size: Option<usize>) -> PyResult<Self> {
        let model = py
            .detach(|| Checkpoint::load(&path)?.build_base(config.as_deref(), image_size, &Device::Cpu))
            .map_err(to_py)?;
        Ok(Self {
            model_name: model.name().to_string(),
            family: if matches!(model, BaseModel::Sam2(_)) { "sam2" } else { "sam1" },
            ruac_head: model.has_bayes_head(),
            image_size: model.image_size(),
            low_res_size: model.low_res_size(),
            inner: Mutex::new(Predictor::new(model, Device::Cpu)),
        })
    }

    /// Encodes an image and keeps its features for the following ``predict`` calls.
    ///
    /// ``image``: an RGB ``numpy.ndarray`` of shape ``(H, W, 3)`` and dtype ``uint8`` (or an
    /// object numpy converts to one, such as a PIL image), any size.
    fn set_image(&self, py: Python<'_>, image: &Bound<'_, PyAny>) -> PyResult<()> {
        let img = rgb_image(image)?;
        py.detach(|| self.lock().set_image(&img)).map_err(to_py)
    }

    /// Predicts masks and per-pixel uncertainty for one object from the prompts, in the pixel
    /// coordinates of the image given to ``set_image``.
    ///
    /// Arguments (``SAM2ImagePredictor.predict``'s names, shapes and defaults):
    ///
    /// * ``point_coords``: ``(N, 2)`` array of ``(x, y)`` points;
    /// * ``point_labels``: ``(N,)`` array, 1 for a foreground point, 0 for background;
    /// * ``box``: ``(4,)`` array ``x0, y0, x1, y1``;
    /// * ``mask_input``: ``(1, L, L)`` low-resolution logits from an earlier call
    ///   (``low_res_masks[i:i+1]``), ``L = low_res_size``;
    /// * ``multimask_output``: three candidate masks instead of one;
    /// * ``return_logits``: return mask logits instead of 0/1 masks.
    ///
    /// RUAC's uncertainty: ``uncertainty="mc"`` (entropy in nats, 0 to ln 2, of the mean
    /// probability over ``mc_samples`` Weibull draws seeded by ``seed``; the released
    /// default) or ``"analytic"`` (closed form, normalised entropy, 0 to 1). A plain SAM
    /// model has no posterior: its map is the entropy of its own sigmoid probability.
    ///
    /// Returns a ``Prediction``, which unpacks as ``masks, iou_predictions, low_res_masks,
    /// uncertainty`` (``(C, H, W)`` float32, ``(C,)``, ``(C, L, L)``, ``(C, H, W)``; ``C`` is 3
    /// with ``multimask_output``, else 1).
    #[pyo3(signature = (point_coords=None, point_labels=None, r#box=None, mask_input=None, multimask_output=true, return_logits=false, uncertainty="mc", mc_samples=20, seed=0))]
    // Each parameter is one of Python's keyword arguments (the signature above); PyO3 maps
    // keywords to parameters, so a struct cannot stand in for them here.
    #[allow(clippy::too_many_arguments)]
    fn predict(
        &self,
        py: Python<'_>,
        point_coords: Option<&Bound<'_, PyAny>>,
        point_labels: Option<&Bound<'_, PyAny>>,
        r#box: Option<&Bound<'_, PyAny>>,
        mask_input: Option<&Bound<'_, PyAny>>,
        multimask_output: bool,
        return_logits: bool,
        uncertainty: &str,
        mc_samples: usize,
        seed: u64,
    ) -> PyResult<PyPrediction> {
        let mode = match uncertainty {
            "mc" if mc_samples == 0 => return Err(PyValueError::new_err("mc_samples must be >= 1 (or use uncertainty=\"analytic\")")),
            "mc" => UncertaintyMode::MonteCarlo { samples: mc_samples, seed },
            "analytic" => UncertaintyMode::Analytic,
            other => return Err(PyValueError::new_err(format!("uncertainty must be \"mc\" or \"analytic\", got {other:?}"))),
        };
        let prompt = Prompt {
            points: points(point_coords, point_labels)?,
            bbox: r#box.map(bbox).transpose()?,
            mask_input: mask_input.map(mask).transpose()?,
            multimask: multimask_output,
        };
        let raw = py.detach(|| -> ruac_core::Result<Raw> {
            let mut p = self.lock();
            p.mode = mode;
            let out = p.predict(&prompt)?;
            let masks = to_host(&out.masks)?;
            let masks = if return_logits { masks } else { Host { data: masks.data.iter().map(|&v| if v > 0.0 { 1.0 } else { 0.0 }).collect(), ..masks } };
            Ok(Raw {
                masks,
                low: to_host(&out.low_res_logits)?,
                unc: to_host(&out.uncertainty)?,
                unc_low: to_host(&out.uncertainty_low_res)?,
                best: out.best(),
                iou: out.iou,
                obj: out.obj_score,
                tokens: out.tokens,
                mode: match (p.model.has_bayes_head(), out.mode) {
                    (false, _) => "sam_sigmoid_entropy",
                    (true, UncertaintyMode::MonteCarlo { .. }) => "monte_carlo",
                    (true, UncertaintyMode::Analytic) => "analytic",
                },
                unit: out.mode.unit(),
                max: out.mode.max_value(),
            })
        });
        let raw = raw.map_err(to_py)?;
        Ok(PyPrediction {
            masks: raw.masks.into_numpy(py)?,
            iou_predictions: PyArray1::from_vec(py, raw.iou).into_any().unbind(),
            low_res_masks: raw.low.into_numpy(py)?,
            uncertainty: raw.unc.into_numpy(py)?,
            uncertainty_low_res: raw.unc_low.into_numpy(py)?,
            object_score_logit: raw.obj,
            mask_tokens: raw.tokens,
            best: raw.best,
            uncertainty_mode: raw.mode,
            uncertainty_unit: raw.unit,
            uncertainty_max: raw.max,
        })
    }

    /// SAM's threshold on the mask logits (a pixel is in the mask when its logit is > 0).
    #[getter]
    fn mask_threshold(&self) -> f32 {
        0.0
    }

    /// The configuration's name (``micro``, ``tiny``, ..., ``vit_b``, ``lite_medsam``).
    #[getter]
    fn model_name(&self) -> &str {
        &self.model_name
    }

    /// ``"sam2"`` (SAM 2.1 / RUAC) or ``"sam1"`` (SAM ViT, MobileSAM, LiteMedSAM).
    #[getter]
    fn family(&self) -> &str {
        self.family
    }

    /// True when the model has RUAC's Bayesian pixel head.
    #[getter]
    fn has_ruac_head(&self) -> bool {
        self.ruac_head
    }

    /// Side of the square encoder input, in pixels.
    #[getter]
    fn image_size(&self) -> usize {
        self.image_size
    }

    /// Side ``L`` of the low-resolution logits and of a ``mask_input``.
    #[getter]
    fn low_res_size(&self) -> usize {
        self.low_res_size
    }

    /// Whether ``set_image`` has been called.
    #[getter]
    fn is_image_set(&self, py: Python<'_>) -> bool {
        py.detach(|| {
            let p = self.lock();
            p.features().is_some() || p.sam1_embedding().is_some()
        })
    }

    /// ``(H, W)`` of the image given to ``set_image``, or ``None`` before.
    #[getter]
    fn orig_hw(&self, py: Python<'_>) -> Option<(usize, usize)> {
        py.detach(|| {
            let p = self.lock();
            (p.features().is_some() || p.sam1_embedding().is_some()).then(|| p.orig_hw())
        })
    }

    fn __repr__(&self) -> String {
        format!(
            "Predictor(model_name={:?}, family={:?}, has_ruac_head={}, image_size={})",
            self.model_name,
            self.family,
            if self.ruac_head { "True" } else { "False" },
            self.image_size
        )
    }
}

/// What ``Predictor.predict`` returns. Unpacks (and indexes) as the 4-tuple ``masks,
/// iou_predictions, low_res_masks, uncertainty``; the other fields are attributes.
#[pyclass(frozen, module = "ruac", name = "Prediction")]
pub struct PyPrediction {
    /// ``(C, H, W)`` float32: 0/1 masks, or logits with ``return_logits=True``.
    #[pyo3(get)]
    masks: Py<PyAny>,
    /// ``(C,)`` float32: the predicted IoU of each mask (SAM 2.1: sigmoid; SAM 1: the IoU
    /// head's raw output, as ``SamPredictor`` returns it).
    #[pyo3(get)]
    iou_predictions: Py<PyAny>,
    /// ``(C, L, L)`` float32 low-resolution logits clamped to ±32 (a ``mask_input``).
    #[pyo3(get)]
    low_res_masks: Py<PyAny>,
    /// ``(C, H, W)`` float32 per-pixel uncertainty (unit: ``uncertainty_unit``).
    #[pyo3(get)]
    uncertainty: Py<PyAny>,
    /// ``(C, L, L)`` float32: the uncertainty at the low resolution.
    #[pyo3(get)]
    uncertainty_low_res: Py<PyAny>,
    /// Object-score logit (positive: an object is present); ``inf`` for SAM 1 models.
    #[pyo3(get)]
    object_score_logit: f32,
    /// The decoder's mask token behind each mask (0 is the single-mask token).
    #[pyo3(get)]
    mask_tokens: Vec<usize>,
    /// Index of the mask with the highest predicted IoU.
    #[pyo3(get)]
    best: usize,
    /// ``"monte_carlo"``, ``"analytic"``, or ``"sam_sigmoid_entropy"`` for a plain SAM.
    #[pyo3(get)]
    uncertainty_mode: &'static str,
    /// The unit of the uncertainty map.
    #[pyo3(get)]
    uncertainty_unit: &'static str,
    /// The largest value the uncertainty can take (ln 2 for nats, 1 for normalised).
    #[pyo3(get)]
    uncertainty_max: f32,
}

impl PyPrediction {
    fn as_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, [&self.masks, &self.iou_predictions, &self.low_res_masks, &self.uncertainty])
    }
}

#[pymethods]
impl PyPrediction {
    fn __len__(&self) -> usize {
        4
    }

    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyIterator>> {
        self.as_tuple(py)?.try_iter()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyAny>> {
        self.as_tuple(py)?.as_any().get_item(index)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let shape = |a: &Py<PyAny>| -> PyResult<String> { Ok(a.bind(py).getattr("shape")?.repr()?.to_string()) };
        Ok(format!(
            "Prediction(masks{}, iou_predictions={}, best={}, uncertainty_mode={:?})",
            shape(&self.masks)?,
            self.iou_predictions.bind(py).repr()?,
            self.best,
            self.uncertainty_mode
        ))
    }
}

/// A tensor's values and shape, read on the host without the GIL.
struct Host {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Host {
    fn into_numpy(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(PyArray1::from_vec(py, self.data).reshape(self.shape)?.into_any().unbind())
    }
}

fn to_host(t: &Tensor) -> ruac_core::Result<Host> {
    Ok(Host { shape: t.dims().to_vec(), data: t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()? })
}

struct Raw {
    masks: Host,
    low: Host,
    unc: Host,
    unc_low: Host,
    iou: Vec<f32>,
    obj: f32,
    tokens: Vec<usize>,
    best: usize,
    mode: &'static str,
    unit: &'static str,
    max: f32,
}

/// `point_coords` `(N, 2)` (or `(1, N, 2)`) with `point_labels` `(N,)` (or `(1, N)`).
fn points(coords: Option<&Bound<'_, PyAny>>, labels: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(f32, f32, PointLabel)>> {
    let (coords, labels) = match (coords, labels) {
        (None, None) => return Ok(vec![]),
        (Some(_), None) => return Err(PyValueError::new_err("point_labels must be supplied if point_coords is supplied")),
        (None, Some(_)) => return Err(PyValueError::new_err("point_coords must be supplied if point_labels is supplied")),
        (Some(c), Some(l)) => (array::<f32>(c, "point_coords")?, array::<f64>(l, "point_labels")?),
    };
    let n = match coords.shape[..] {
        [n, 2] | [1, n, 2] => n,
        _ => return Err(PyValueError::new_err(format!("point_coords must have shape (N, 2), got {}", coords.describe_shape()))),
    };
    match labels.shape[..] {
        [m] | [1, m] if m == n => {}
        _ => {
            return Err(PyValueError::new_err(format!(
                "point_labels must have shape ({n},) to match point_coords {}, got {}",
                coords.describe_shape(),
                labels.describe_shape()
            )))
        }
    }
    let mut out = Vec::with_capacity(n);
    for (i, &l) in labels.data.iter().enumerate() {
        let label = match l {
            1.0 => PointLabel::Positive,
            0.0 => PointLabel::Negative,
            _ => return Err(PyValueError::new_err(format!("point_labels[{i}] = {l}: a label is 1 (foreground) or 0 (background)"))),
        };
        out.push((coords.data[2 * i], coords.data[2 * i + 1], label));
    }
    Ok(out)
}

/// `box` `(4,)` (or `(1, 4)`: one box per call).
fn bbox(b: &Bound<'_, PyAny>) -> PyResult<[f32; 4]> {
    let a = array::<f32>(b, "box")?;
    match a.shape[..] {
        [4] | [1, 4] => Ok([a.data[0], a.data[1], a.data[2], a.data[3]]),
        _ => Err(PyValueError::new_err(format!("box must have shape (4,) (x0, y0, x1, y1; one box per call), got {}", a.describe_shape()))),
    }
}

/// `mask_input` `(1, L, L)` (also `(L, L)` or `(1, 1, L, L)`) as the `1, 1, L, L` tensor
/// ruac-core checks against the model's low-resolution size.
fn mask(m: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let a = array::<f32>(m, "mask_input")?;
    let (h, w) = match a.shape[..] {
        [h, w] | [1, h, w] | [1, 1, h, w] => (h, w),
        _ => return Err(PyValueError::new_err(format!("mask_input must have shape (1, L, L), got {}", a.describe_shape()))),
    };
    Tensor::from_vec(a.data, (1, 1, h, w), &Device::Cpu).map_err(candle)
}

/// The tensors of a checkpoint file as stored, by name: floating-point tensors as float32
/// (float64 kept), integer ones as uint8, uint32 or int64. Reads every format
/// ``Predictor.from_checkpoint`` reads (a PyTorch ``.pt`` / ``.pth`` archive without
/// executing its pickle, or ``.safetensors``), with no torch needed.
#[pyfunction]
pub fn load_state_dict<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    enum Data {
        F32(Vec<f32>),
        F64(Vec<f64>),
        U8(Vec<u8>),
        U32(Vec<u32>),
        I64(Vec<i64>),
    }
    let tensors = py
        .detach(|| -> ruac_core::Result<Vec<(String, Vec<usize>, Data)>> {
            let ck = Checkpoint::load(&path)?;
            let mut names: Vec<&String> = ck.tensors.keys().collect();
            names.sort();
            let mut out = Vec::with_capacity(names.len());
            for name in names {
                let t = ck.tensors[name].flatten_all()?;
                let data = match t.dtype() {
                    DType::F64 => Data::F64(t.to_vec1()?),
                    DType::U8 => Data::U8(t.to_vec1()?),
                    DType::U32 => Data::U32(t.to_vec1()?),
                    d if d.is_float() => Data::F32(t.to_dtype(DType::F32)?.to_vec1()?),
                    _ => Data::I64(t.to_dtype(DType::I64)?.to_vec1()?),
                };
                out.push((name.clone(), ck.tensors[name].dims().to_vec(), data));
            }
            Ok(out)
        })
        .map_err(to_py)?;
    let dict = PyDict::new(py);
    for (name, shape, data) in tensors {
        let arr = match data {
            Data::F32(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::F64(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::U8(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::U32(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
            Data::I64(v) => PyArray1::from_vec(py, v).reshape(shape)?.into_any(),
        };
        dict.set_item(name, arr)?;
    }
    Ok(dict)
}
