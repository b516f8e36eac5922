//! SAM 1 family `.pth` (bare state dicts): read, then the SAM 1 configuration inferred from
//! the shapes (ViT / TinyViT, widths, depths, the Bayesian head).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(ck) = Checkpoint::from_pth_bytes(data, "fuzz.pth") {
        let _ = ck.infer_sam1_config();
        let _ = ck.has_bayes_head();
    }
});
