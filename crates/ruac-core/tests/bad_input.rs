//! Bad input gets a clear error naming the problem, never a panic.
mod common;
use common::*;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::model::Sam2Config;
use ruac_core::predictor::{PointLabel, Predictor, Prompt};

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ruac-bad-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn micro128() -> Sam2Config {
    Sam2Config::micro().with_image_size(128)
}

fn predictor() -> Predictor {
    let m = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap().build_model(Some(micro128()), &Device::Cpu).unwrap();
    Predictor::new(m, Device::Cpu)
}

fn png_bytes(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 128]));
    let mut out = std::io::Cursor::new(vec![]);
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn corrupt_and_unsupported_images() {
    let err = RgbImage::decode(b"definitely not an image").unwrap_err().to_string();
    assert!(err.contains("unrecognised image format"), "{err}");
    let mut png = png_bytes(40, 30);
    png.truncate(png.len() / 2);
    let err = RgbImage::decode(&png).unwrap_err().to_string();
    assert!(err.contains("corrupt or truncated"), "{err}");
    let err = RgbImage::open("/nonexistent/x.png").unwrap_err().to_string();
    assert!(err.contains("/nonexistent/x.png"), "{err}");
}

#[test]
fn huge_image_is_refused_from_its_header() {
    // A 20000x20000 PNG header: refused before any pixel is decoded.
    let mut png = png_bytes(1, 1);
    // IHDR width/height live at bytes 16..24; patch them and fix the chunk CRC.
    png[16..20].copy_from_slice(&20000u32.to_be_bytes());
    png[20..24].copy_from_slice(&20000u32.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    let err = RgbImage::decode(&png).unwrap_err().to_string();
    assert!(err.contains("20000x20000") && err.contains("downscale"), "{err}");
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

#[test]
fn one_pixel_image_segments() {
    let img = RgbImage::decode(&png_bytes(1, 1)).unwrap();
    let mut p = predictor();
    p.set_image(&img).unwrap();
    let out = p.predict(&Prompt { points: vec![(0.5, 0.5, PointLabel::Positive)], multimask: true, ..Default::default() }).unwrap();
    assert_eq!(out.masks.dims(), &[3, 1, 1]);
    assert!(out.iou.iter().all(|v| v.is_finite()));
}

#[test]
fn prompt_errors_name_the_problem() {
    let img = RgbImage::decode(&png_bytes(40, 30)).unwrap();
    let mut p = predictor();
    let none = Prompt { points: vec![(1.0, 1.0, PointLabel::Positive)], ..Default::default() };
    assert!(p.predict(&none).unwrap_err().to_string().contains("set_image"));
    p.set_image(&img).unwrap();
    let cases: Vec<(Prompt, &str)> = vec![
        (Prompt::default(), "no prompt"),
        (Prompt { points: vec![(1.0, 1.0, PointLabel::Positive); 1025], ..Default::default() }, "1025 points, over the limit of 1024"),
        (Prompt { points: vec![(41.0, 3.0, PointLabel::Positive)], ..Default::default() }, "outside the 40x30 image"),
        (Prompt { points: vec![(-1.0, 3.0, PointLabel::Negative)], ..Default::default() }, "outside"),
        (Prompt { points: vec![(f32::NAN, 3.0, PointLabel::Positive)], ..Default::default() }, "not a finite"),
        (Prompt { bbox: Some([10.0, 10.0, 5.0, 20.0]), ..Default::default() }, "empty"),
        (Prompt { bbox: Some([0.0, 0.0, 50.0, 20.0]), ..Default::default() }, "outside"),
        (
            Prompt { mask_input: Some(Tensor::zeros((1, 1, 8, 8), DType::F32, &Device::Cpu).unwrap()), ..Default::default() },
            "mask prompt has shape",
        ),
    ];
    for (prompt, want) in cases {
        let err = p.predict(&prompt).unwrap_err().to_string();
        assert!(err.contains(want), "expected {want:?} in {err:?}");
    }
}

fn write_st(tensors: &HashMap<String, Tensor>, tag: &str) -> std::path::PathBuf {
    let path = tmpdir(tag).join("ck.safetensors");
    candle_core::safetensors::save(tensors, &path).unwrap();
    path
}

#[test]
fn truncated_checkpoints() {
    let bytes = std::fs::read(fixture("sam2.1_micro.pt")).unwrap();
    let dir = tmpdir("trunc");
    let pt = dir.join("cut.pt");
    std::fs::write(&pt, &bytes[..bytes.len() / 2]).unwrap();
    let err = Checkpoint::load(&pt).unwrap_err().to_string();
    assert!(err.contains("cut.pt") && err.contains("PyTorch"), "{err}");

    let ck = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap();
    let st = write_st(&ck.tensors, "trunc-st");
    let sb = std::fs::read(&st).unwrap();
    std::fs::write(&st, &sb[..sb.len() - 1000]).unwrap();
    let err = Checkpoint::load(&st).unwrap_err().to_string();
    assert!(err.contains("not a valid safetensors"), "{err}");

    std::fs::write(dir.join("tiny.bin"), b"abc").unwrap();
    let err = Checkpoint::load(dir.join("tiny.bin")).unwrap_err().to_string();
    assert!(err.contains("only 3 bytes"), "{err}");
}

#[test]
fn nan_weights_wrong_shapes_and_dtypes() {
    let ck = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap();
    let name = "sam_mask_decoder.iou_token.weight";

    let mut t = ck.tensors.clone();
    let mut v = t[name].flatten_all().unwrap().to_vec1::<f32>().unwrap();
    v[3] = f32::NAN;
    v[5] = f32::INFINITY;
    t.insert(name.into(), Tensor::from_vec(v, t[name].shape(), &Device::Cpu).unwrap());
    let err = Checkpoint::load(write_st(&t, "nan")).unwrap().build_model(Some(micro128()), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains(name) && err.contains("2 non-finite"), "{err}");

    let mut t = ck.tensors.clone();
    t.insert(name.into(), Tensor::zeros((1, 65), DType::F32, &Device::Cpu).unwrap());
    let err = Checkpoint::load(write_st(&t, "shape")).unwrap().build_model(Some(micro128()), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("wrong shape") && err.contains("expected [1, 64], found [1, 65]"), "{err}");

    let mut t = ck.tensors.clone();
    t.insert(name.into(), Tensor::zeros((1, 64), DType::I64, &Device::Cpu).unwrap());
    let err = Checkpoint::load(write_st(&t, "dtype")).unwrap_err().to_string();
    assert!(err.contains(name) && err.contains("dtype"), "{err}");

    // f16 weights are accepted and converted.
    let t: HashMap<String, Tensor> = ck.tensors.iter().map(|(k, v)| (k.clone(), v.to_dtype(DType::F16).unwrap())).collect();
    Checkpoint::load(write_st(&t, "f16")).unwrap().build_model(Some(micro128()), &Device::Cpu).unwrap();
}

#[test]
fn unknown_trunk_needs_an_explicit_configuration() {
    let mut ck = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap();
    ck.tensors.retain(|k, _| !k.starts_with("image_encoder.trunk.blocks.6."));
    let err = ck.infer_config().unwrap_err().to_string();
    assert!(err.contains("stages [1, 2, 3]") && err.contains("explicitly"), "{err}");
}

#[test]
fn named_configurations() {
    let ck = Checkpoint::load(fixture("sam2.1_micro.pt")).unwrap();
    assert_eq!(ck.config_for(Some("micro"), Some(128)).unwrap(), micro128());
    assert_eq!(ck.config_for(None, Some(128)).unwrap(), micro128());
    let err = ck.config_for(Some("huge"), None).unwrap_err().to_string();
    assert!(err.contains("unknown configuration \"huge\""), "{err}");
    // A named configuration that does not fit the tensors fails naming them.
    let err = ck.build_model(Some(ck.config_for(Some("tiny"), Some(256)).unwrap()), &Device::Cpu).unwrap_err().to_string();
    assert!(err.contains("tiny") && err.contains("wrong shape"), "{err}");
}

/// A `.pt` whose pickled shape claims more bytes than the archive entry of its storage holds
/// is refused, naming the tensor, before its buffer is allocated (from a file and from bytes).
#[test]
fn pt_tensor_claiming_more_than_its_storage_is_refused() {
    use std::io::{Read, Write};
    let src = std::fs::read(fixture("sam1_tiny_tinyvit.pt")).unwrap();
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(&src)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut cut = None;
    for i in 0..zin.len() {
        let mut f = zin.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        let mut data = Vec::new();
        f.read_to_end(&mut data).unwrap();
        // Every storage keeps only its first 2 bytes.
        if name.contains("/data/") && data.len() > 2 && cut.is_none() {
            data.truncate(2);
            cut = Some(name.clone());
        }
        out.start_file(name, opts).unwrap();
        out.write_all(&data).unwrap();
    }
    assert!(cut.is_some());
    let bytes = out.finish().unwrap().into_inner();
    let err = Checkpoint::from_pth_bytes(&bytes, "cut.pt").unwrap_err().to_string();
    assert!(err.contains("cut.pt") && err.contains("claims") && err.contains("its storage holds 2"), "{err}");
    let p = tmpdir("ptclaim").join("cut.pt");
    std::fs::write(&p, &bytes).unwrap();
    let err = Checkpoint::load(&p).unwrap_err().to_string();
    assert!(err.contains("its storage holds 2"), "{err}");
}

/// A safetensors file whose 8-byte header length claims 8 exabytes, or more than the file
/// holds, is refused from those 8 bytes.
#[test]
fn safetensors_header_claims_are_refused() {
    let mut b = u64::MAX.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    let err = Checkpoint::from_safetensors_bytes(&b, "x.safetensors").unwrap_err().to_string();
    assert!(err.contains("over the") && err.contains("limit"), "{err}");
    let mut b = 1000u64.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    let err = Checkpoint::from_safetensors_bytes(&b, "x.safetensors").unwrap_err().to_string();
    assert!(err.contains("header claims 1000 bytes"), "{err}");
}

/// Found by fuzzing (fuzz/README.md, `image`): an 824-byte JPEG claiming about 8000x8000
/// pixels decoded for seconds into hundreds of MB of grey. A file claiming more pixels than
/// its bytes could hold is refused from its header.
#[test]
fn tiny_file_claiming_a_huge_image_is_refused() {
    let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 9) as u8, (y * 7) as u8, 90]));
    let mut jpg = std::io::Cursor::new(vec![]);
    img.write_to(&mut jpg, image::ImageFormat::Jpeg).unwrap();
    let mut jpg = jpg.into_inner();
    // The SOF0 segment: FF C0, length (2), precision (1), height (2), width (2).
    let sof = jpg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpg[sof + 5..sof + 7].copy_from_slice(&8000u16.to_be_bytes());
    jpg[sof + 7..sof + 9].copy_from_slice(&8000u16.to_be_bytes());
    let t = std::time::Instant::now();
    let err = RgbImage::decode(&jpg).unwrap_err().to_string();
    assert!(err.contains("8000x8000") && err.contains("too few for that many pixels"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_millis(200));
}

/// Found by fuzzing (fuzz/README.md, `image`): a palette PNG whose PLTE chunk is 262 bytes
/// (not a whole number of RGB entries) made the png crate panic while expanding it. Refused
/// with a message, by the image decoder and the annotation reader alike.
#[test]
fn png_with_a_ragged_palette_is_refused_not_a_panic() {
    // 2x2, 1-bit palette; PLTE of 262 bytes; one IDAT; IEND.
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = (data.len() as u32).to_be_bytes().to_vec();
        c.extend_from_slice(kind);
        c.extend_from_slice(data);
        let crc = crc32(&c[4..]);
        c.extend_from_slice(&crc.to_be_bytes());
        c
    };
    let build = |palette: &[u8]| {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &[0, 0, 0, 2, 0, 0, 0, 2, 1, 3, 0, 0, 0]));
    png.extend(chunk(b"PLTE", palette));
    let mut z = vec![0x78, 0x01, 0x01, 0x04, 0x00, 0xfb, 0xff, 0, 0x80, 0, 0x40];
    let adler = { let (mut a, mut b) = (1u32, 0u32); for &x in &[0u8, 0x80, 0, 0x40] { a = (a + x as u32) % 65521; b = (b + a) % 65521; } (b << 16) | a };
    z.extend_from_slice(&adler.to_be_bytes());
    png.extend(chunk(b"IDAT", &z));
    png.extend(chunk(b"IEND", &[]));
    png
    };
    let png = build(&[0x5b; 262]);
    let err = RgbImage::decode(&png).unwrap_err().to_string();
    assert!(err.contains("palette of 262 bytes"), "{err}");
    let err = ruac_core::data::decode_label_png(&png).unwrap_err().to_string();
    assert!(err.contains("palette of 262 bytes"), "{err}");
    // The same file with a whole palette (two entries) decodes.
    let ok = RgbImage::decode(&build(&[0, 0, 0, 255, 255, 255])).unwrap();
    assert_eq!((ok.width, ok.height, &ok.data[..6]), (2, 2, &[255, 255, 255, 0, 0, 0][..]));
}
