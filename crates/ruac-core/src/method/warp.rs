//! Differentiable resampling for training: bilinear resizing as two matrix products (candle
//! has no backward for `upsample_bilinear2d`) and bilinear warping by an offset field
//! (`F.grid_sample(..., mode="bilinear", padding_mode="border", align_corners=True)` of the
//! deformation attacker, `ruac/core/attackers/deform.py`).
use candle_core::{Device, Result, Tensor};

/// Row-interpolation matrix `n_out × n_in` of PyTorch's bilinear resize
/// (`align_corners=False`: source `(i + 0.5)·n_in/n_out − 0.5`, clamped at 0).
pub fn resize_matrix(n_in: usize, n_out: usize, dev: &Device) -> Result<Tensor> {
    let mut m = vec![0f32; n_out * n_in];
    let scale = n_in as f32 / n_out as f32;
    for i in 0..n_out {
        let src = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        let f = src - i0 as f32;
        m[i * n_in + i0] += 1.0 - f;
        m[i * n_in + i1] += f;
    }
    Tensor::from_vec(m, (n_out, n_in), dev)
}

/// Bilinear resize of the last two axes of `x` (`..., H, W`) to `h × w`, differentiable.
pub fn resize_bilinear(x: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let r = dims.len();
    let (hi, wi) = (dims[r - 2], dims[r - 1]);
    if (hi, wi) == (h, w) {
        return Ok(x.clone());
    }
    let lead: usize = dims[..r - 2].iter().product();
    let ah = resize_matrix(hi, h, x.device())?.to_dtype(x.dtype())?;
    let aw = resize_matrix(wi, w, x.device())?.to_dtype(x.dtype())?;
    let x3 = x.reshape((lead, hi, wi))?;
    let y = ah
        .unsqueeze(0)?
        .broadcast_as((lead, h, hi))?
        .contiguous()?
        .matmul(&x3)?; // lead,h,wi
    let y = y.matmul(
        &aw.t()?
            .unsqueeze(0)?
            .broadcast_as((lead, wi, w))?
            .contiguous()?,
    )?;
    let mut out = dims[..r - 2].to_vec();
    out.extend([h, w]);
    y.reshape(out)
}

/// Samples `img` (`C, H, W`) at `(x + dx, y + dy)` for every pixel, with offsets `dx`, `dy`
/// (`H, W`, in pixels): bilinear, coordinates clamped to the border. Gradients flow to the
/// image and to the offsets. Zero offsets give the image back exactly.
pub fn warp_bilinear(img: &Tensor, dx: &Tensor, dy: &Tensor) -> Result<Tensor> {
    let (c, h, w) = img.dims3()?;
    let dev = img.device();
    let gx = Tensor::arange(0f32, w as f32, dev)?
        .unsqueeze(0)?
        .broadcast_as((h, w))?;
    let gy = Tensor::arange(0f32, h as f32, dev)?
        .unsqueeze(1)?
        .broadcast_as((h, w))?;
    let sx = (gx + dx)?.clamp(0.0, (w - 1) as f64)?;
    let sy = (gy + dy)?.clamp(0.0, (h - 1) as f64)?;
    // Integer corners come from the values (no gradient); the fractions keep it.
    let x0 = sx.detach().floor()?;
    let y0 = sy.detach().floor()?;
    let fx = (&sx - &x0)?.flatten_all()?;
    let fy = (&sy - &y0)?.flatten_all()?;
    let xs: Vec<u32> = x0
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .map(|&v| v as u32)
        .collect();
    let ys: Vec<u32> = y0
        .flatten_all()?
        .to_vec1::<f32>()?
        .iter()
        .map(|&v| v as u32)
        .collect();
    let (wm, hm) = (w as u32 - 1, h as u32 - 1);
    let idx = |ox: u32, oy: u32| -> Result<Tensor> {
        let v: Vec<u32> = xs
            .iter()
            .zip(&ys)
            .map(|(&x, &y)| (y + oy).min(hm) * w as u32 + (x + ox).min(wm))
            .collect();
        Tensor::from_vec(v, h * w, dev)
    };
    let flat = img.reshape((c, h * w))?;
    let p00 = flat.index_select(&idx(0, 0)?, 1)?;
    let p10 = flat.index_select(&idx(1, 0)?, 1)?;
    let p01 = flat.index_select(&idx(0, 1)?, 1)?;
    let p11 = flat.index_select(&idx(1, 1)?, 1)?;
    let fx = fx.unsqueeze(0)?;
    let fy = fy.unsqueeze(0)?;
    let gx = fx.affine(-1.0, 1.0)?;
    let gy = fy.affine(-1.0, 1.0)?;
    let top = (p00.broadcast_mul(&gx)? + p10.broadcast_mul(&fx)?)?;
    let bot = (p01.broadcast_mul(&gx)? + p11.broadcast_mul(&fx)?)?;
    (top.broadcast_mul(&gy)? + bot.broadcast_mul(&fy)?)?.reshape((c, h, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_matches_candle_forward() {
        let dev = Device::Cpu;
        let x = Tensor::arange(0f32, 30.0, &dev)
            .unwrap()
            .reshape((1, 1, 5, 6))
            .unwrap()
            .sqr()
            .unwrap();
        let a = resize_bilinear(&x, 9, 13).unwrap();
        let b = x.upsample_bilinear2d(9, 13, false).unwrap();
        let d = (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(d < 1e-3, "max diff {d}");
    }
}
