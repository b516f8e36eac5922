//! The wasm API itself, in a headless browser (wasm-bindgen-test): `Session` on the CPU
//! backend, the prediction's shapes and ranges, the exports, and the errors JavaScript sees.
//! `make test-wasm-api` (wasm-bindgen-test-runner + Debian's chromedriver).
#![cfg(target_arch = "wasm32")]
use js_sys::Reflect;
use ruac_web::{coco_rle, mask_png, Session};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

static MODEL: &[u8] = include_bytes!("../../../web/models/ruac-micro.safetensors");

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).expect("property readable")
}

fn call(v: &JsValue, method: &str) -> JsValue {
    let f: js_sys::Function = get(v, method).dyn_into().expect("a method");
    f.call0(v).expect("method call")
}

fn message(e: JsValue) -> String {
    e.dyn_into::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|v| format!("{v:?}"))
}

#[wasm_bindgen_test]
async fn cpu_session_encodes_once_and_decodes_clicks() {
    let s = Session::create(MODEL.to_vec(), "ruac-micro.safetensors".into(), "cpu".into()).await.map_err(JsValue::from).unwrap();
    assert!(s.backend().contains("CPU"));
    assert!(!s.is_gpu());
    assert!(s.model_info().map_err(JsValue::from).unwrap().contains("\"config\":\"micro\""));
    let (w, h) = (40u32, 30u32);
    let rgba: Vec<u8> = (0..w * h).flat_map(|i| [(i % w * 6) as u8, (i / w * 8) as u8, 90, 255]).collect();
    JsFuture::from(s.set_image(rgba, w, h)).await.unwrap();
    for mode in ["mc", "analytic"] {
        s.set_uncertainty(mode, 20, 0).map_err(JsValue::from).unwrap();
        let p = JsFuture::from(s.predict(vec![20.5, 15.5, 1.0, 3.5, 3.5, 0.0], vec![], vec![], true)).await.unwrap();
        assert_eq!(get(&p, "k").as_f64(), Some(3.0));
        assert_eq!(get(&p, "width").as_f64(), Some(40.0));
        let masks: js_sys::Float32Array = call(&p, "masks").dyn_into().unwrap();
        let unc: js_sys::Float32Array = call(&p, "uncertainty").dyn_into().unwrap();
        assert_eq!(masks.length(), 3 * 40 * 30);
        let max = get(&p, "maxValue").as_f64().unwrap() as f32;
        assert!(unc.to_vec().iter().all(|u| u.is_finite() && *u >= 0.0 && *u <= max + 1e-6));
        assert_eq!(get(&p, "mode").as_string().as_deref(), Some(mode));
        // The chosen mask's low-resolution logits are the next click's mask prompt.
        let lr = get(&p, "lowRes").as_f64().unwrap() as usize;
        let low: js_sys::Float32Array = call(&p, "lowResLogits").dyn_into().unwrap();
        assert_eq!(low.length() as usize, 3 * lr * lr);
        let mask = low.to_vec()[..lr * lr].to_vec();
        let refined = JsFuture::from(s.predict(vec![20.5, 15.5, 1.0, 3.5, 3.5, 0.0, 30.5, 10.5, 1.0], vec![], mask, false)).await.unwrap();
        assert_eq!(get(&refined, "k").as_f64(), Some(1.0));
    }
    let e = message(JsFuture::from(s.predict(vec![20.5, 15.5, 1.0], vec![], vec![0.0; 5], false)).await.unwrap_err());
    assert!(e.contains("mask prompt"), "{e}");
    // A box prompt, then the errors a page can cause.
    assert!(JsFuture::from(s.predict(vec![], vec![5.0, 5.0, 30.0, 25.0], vec![], true)).await.is_ok());
    let e = JsFuture::from(s.predict(vec![400.0, 1.0, 1.0], vec![], vec![], true)).await.unwrap_err();
    assert!(message(e).contains("outside the 40x30 image"));
    let e = JsFuture::from(s.set_image(vec![0; 7], 2, 2)).await.unwrap_err();
    assert!(message(e).contains("expected 2x2x4"));
    assert!(s.set_uncertainty("exact", 1, 0).is_err());
}

#[wasm_bindgen_test]
async fn bad_weights_and_backends_are_js_errors() {
    let e = Session::create(MODEL[..MODEL.len() / 3].to_vec(), "cut.safetensors".into(), "cpu".into()).await.err().unwrap();
    assert!(message(e.into()).contains("cut.safetensors"));
    let e = Session::create(MODEL.to_vec(), "m".into(), "tpu".into()).await.err().unwrap();
    assert!(message(e.into()).contains("unknown backend"));
}

#[wasm_bindgen_test]
fn exports() {
    let logits = [1.0f32, -1.0, 1.0, 1.0, -1.0, -1.0];
    let png = mask_png(&logits, 3, 2).map_err(JsValue::from).unwrap().to_vec();
    assert_eq!(&png[1..4], b"PNG");
    let rle = coco_rle(&logits, 3, 2, 0.5).map_err(JsValue::from).unwrap();
    assert!(rle.contains("\"area\": 3"));
    assert!(mask_png(&logits, 4, 4).is_err());
}
