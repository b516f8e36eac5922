//! Shared by the fuzz targets: an allocator that aborts (a libFuzzer crash) on any single
//! allocation over 2 GiB or more than 2 GiB live, so memory claims are caught even when
//! the pages are never touched (libFuzzer's `-rss_limit_mb` sees only resident memory), and
//! scratch folders for the readers that take a dataset folder.
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const LIMIT: usize = 2 << 30;

pub struct Capped;
static LIVE: AtomicUsize = AtomicUsize::new(0);

fn over(_size: usize) -> ! {
    use std::io::Write;
    // Stderr is unbuffered: this write does not allocate.
    let _ = std::io::stderr().write_all(b"fuzz: allocation over the 2 GiB budget\n");
    std::process::abort()
}

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() > LIMIT || LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size() > LIMIT {
            over(l.size());
        }
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if l.size() > LIMIT || LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size() > LIMIT {
            over(l.size());
        }
        System.alloc_zeroed(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if new > l.size() {
            let add = new - l.size();
            if new > LIMIT || LIVE.fetch_add(add, Ordering::Relaxed) + add > LIMIT {
                over(new);
            }
        } else {
            LIVE.fetch_sub(l.size() - new, Ordering::Relaxed);
        }
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: Capped = Capped;

/// The repository's committed fixtures.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/ruac-core/tests/fixtures")
}

/// A scratch folder for this process under `fuzz/target/scratch/`.
pub fn scratch(tag: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("target/scratch/{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch folder");
    d
}
