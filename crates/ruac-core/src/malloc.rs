//! An opt-in allocator setting for programs (the `trainer`, the benchmarks), never applied by
//! the library itself.
//!
//! With glibc's defaults every buffer above the mmap threshold (at most 32 MiB, and always
//! for Hiera's 50-150 MB activations at 1024 px) is a fresh `mmap`, returned with `munmap`
//! when freed, so each `set_image` takes 0.5-1 M page faults and a fifth of its CPU time in
//! the kernel (BENCHMARKS.md, "Where the Rust time goes"). [`reuse_large_buffers`] serves
//! every allocation from the heap and keeps freed memory for the next one: `set_image` at
//! tiny@1024 ran 19 % faster, with a 70 MiB lower peak, in the measured run. A process that
//! has peaked keeps its heap, which suits a tool that encodes image after image.

/// Sets glibc's `M_MMAP_MAX` to 0 and `M_TRIM_THRESHOLD` to its largest value. Returns
/// whether both were applied: false on other C libraries and platforms, where it does nothing.
pub fn reuse_large_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is called before the program
        // allocates large buffers, and glibc serialises it with allocations.
        unsafe { libc::mallopt(libc::M_MMAP_MAX, 0) == 1 && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_takes_both_settings() {
        let applied = super::reuse_large_buffers();
        assert_eq!(applied, cfg!(all(target_os = "linux", target_env = "gnu")));
        // The heap still serves a large buffer, and returns it for reuse.
        let v = vec![1u8; 64 << 20];
        assert_eq!(v.iter().map(|&b| b as usize).sum::<usize>(), 64 << 20);
    }
}
