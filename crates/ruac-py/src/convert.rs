//! numpy arrays in, numpy arrays and plain Python values out. Shapes and dtypes are checked
//! here with messages naming the argument; values are checked by ruac-core.
use numpy::ndarray::IxDyn;
use numpy::{AllowTypeChange, Element, PyArrayDescrMethods, PyArrayLike, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use ruac_core::image_io::RgbImage;
use serde_json::Value;

/// An array and its shape, row-major.
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

impl<T> Array<T> {
    pub fn describe_shape(&self) -> String {
        format!("{:?}", self.shape)
    }
}

/// Anything numpy can turn into an array of `T` (`numpy.asarray(obj, dtype=T)`), read in
/// row-major order. A conversion failure keeps numpy's exception type, prefixed with `name`.
pub fn array<'py, T>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Array<T>>
where
    T: Element + Copy + 'py,
    for<'a> Vec<T>: FromPyObject<'a, 'py>,
{
    let py = obj.py();
    let a: PyArrayLike<'py, T, IxDyn, AllowTypeChange> = obj.extract().map_err(|e: PyErr| {
        let msg = format!("{name}: cannot convert to an array of {}: {}", std::any::type_name::<T>(), e.value(py));
        PyErr::from_type(e.get_type(py), msg)
    })?;
    let view = a.as_array();
    Ok(Array { shape: view.shape().to_vec(), data: view.iter().copied().collect() })
}

/// A map of one image: 2-D `(H, W)` as (width, height) and the values.
pub fn map2d<'py, T>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<(usize, usize, Vec<T>)>
where
    T: Element + Copy + 'py,
    for<'a> Vec<T>: FromPyObject<'a, 'py>,
{
    let a = array::<T>(obj, name)?;
    match a.shape[..] {
        [h, w] => Ok((w, h, a.data)),
        _ => Err(PyValueError::new_err(format!("{name} must be a 2-D (H, W) array, got shape {}", a.describe_shape()))),
    }
}

/// `SAM2ImagePredictor.set_image`'s input: an `(H, W, 3)` RGB array of dtype uint8 (or an
/// object numpy turns into one, such as a PIL image).
pub fn rgb_image(obj: &Bound<'_, PyAny>) -> PyResult<RgbImage> {
    let py = obj.py();
    if let Ok(arr) = obj.cast::<PyUntypedArray>() {
        let dtype = arr.dtype();
        if !dtype.is_equiv_to(&numpy::dtype::<u8>(py)) {
            return Err(PyTypeError::new_err(format!(
                "image must be a uint8 array of shape (H, W, 3), got dtype {dtype} (scale to 0..255 and use .astype(numpy.uint8))"
            )));
        }
    }
    let a = array::<u8>(obj, "image")?;
    match a.shape[..] {
        [h, w, 3] => RgbImage::new(w, h, a.data).map_err(crate::errors::to_py),
        _ => Err(PyValueError::new_err(format!(
            "image must be an RGB array of shape (H, W, 3), got shape {}",
            a.describe_shape()
        ))),
    }
}

/// A serde value as plain Python objects (dict, list, float, int, bool, str, None).
pub fn to_python<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_bound_py_any(py)?,
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            _ if n.is_f64() => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?,
            (Some(u), _) => u.into_bound_py_any(py)?,
            (None, Some(i)) => i.into_bound_py_any(py)?,
            (None, None) => n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)?,
        },
        Value::String(s) => s.into_bound_py_any(py)?,
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_python(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, item) in map {
                dict.set_item(k, to_python(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// Any serializable ruac-core result as Python objects.
pub fn serialize<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(v).map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    to_python(py, &value)
}

/// Plain Python objects (a configuration dict) as a serde value.
pub fn from_python(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Value> {
    if obj.is_none() {
        Ok(Value::Null)
    } else if obj.is_instance_of::<PyBool>() {
        Ok(Value::Bool(obj.extract()?))
    } else if obj.is_instance_of::<PyInt>() || obj.hasattr("__index__")? {
        // ints, and numpy's integer scalars
        let i: i64 = obj.call_method0("__index__")?.extract()?;
        Ok(Value::from(i))
    } else if obj.is_instance_of::<PyFloat>() || obj.hasattr("__float__")? && !obj.is_instance_of::<PyString>() {
        let f: f64 = obj.extract()?;
        Ok(serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null))
    } else if obj.is_instance_of::<PyString>() {
        Ok(Value::String(obj.extract()?))
    } else if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = serde_json::Map::new();
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| PyTypeError::new_err(format!("{name}: keys must be strings")))?;
            let sub = format!("{name}.{key}");
            map.insert(key, from_python(&v, &sub)?);
        }
        Ok(Value::Object(map))
    } else if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() || obj.hasattr("tolist")? {
        let seq = if obj.hasattr("tolist")? { obj.call_method0("tolist")? } else { obj.clone() };
        let mut out = Vec::new();
        for item in seq.try_iter()? {
            out.push(from_python(&item?, name)?);
        }
        Ok(Value::Array(out))
    } else {
        Err(PyTypeError::new_err(format!("{name}: unsupported value of type {}", obj.get_type().name()?)))
    }
}
