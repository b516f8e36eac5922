//! safetensors bytes: the header (length, JSON, offsets, dtypes, metadata), then both
//! families' configuration inference.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(ck) = Checkpoint::from_safetensors_bytes(data, "fuzz.safetensors") {
        let _ = ck.infer_config();
        let _ = ck.infer_sam1_config();
        let _ = ck.metadata_image_size();
    }
});
