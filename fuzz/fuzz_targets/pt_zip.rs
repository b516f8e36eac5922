//! `.pt` archives (zip + pickle) from bytes, as the web page reads them, then the SAM 2.1
//! configuration inferred from the tensors' shapes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ruac_core::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    if let Ok(ck) = Checkpoint::from_pth_bytes(data, "fuzz.pt") {
        let _ = ck.infer_config();
        let _ = ck.infer_sam1_config();
    }
});
