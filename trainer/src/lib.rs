//! The trainer's pure parsers as a library, for the fuzz targets (`fuzz/`) and tests: the
//! evaluation manifest and the training configuration with its `--set` overrides. The binary
//! (`main.rs`) compiles the same files as its own modules.
pub mod eval {
    pub mod manifest;
}
pub mod train {
    pub mod config;
}
