//! `.npy` predictions (`trainer eval --predictions`): header, dtype, shape against the data.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = ruac_core::npy::parse_npy(data, "fuzz.npy") {
        assert_eq!(a.data.len(), a.shape.iter().product::<usize>());
    }
});
