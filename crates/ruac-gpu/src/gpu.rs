//! The device, the compiled kernels, a pool of activation buffers, dispatch and read-back.
//!
//! Every kernel is compiled once when the device opens (`Gpu::new`, in `kernels`) (inside an error scope, so a WGSL error is a
//! [`GpuError::Shader`] instead of a panic). Work is recorded into one command encoder, one
//! compute pass per dispatch (wgpu orders and synchronises passes), and submitted when a
//! result is read back. Activation buffers come from a pool and return to it when dropped,
//! so GPU memory stays at the weights plus the largest set of activations alive at once.
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use wgpu::util::DeviceExt;

pub use crate::error::Result;
use crate::error::GpuError;
pub use crate::adapter::{list_adapters, Limits};
use crate::adapter::{check_limits, default_adapter, needed_limits, pick_adapter};

/// Threads per workgroup of the 1-D kernels; the matmul uses 16x16. Requested as a limit
/// (Chromium's compatibility adapters default to 128).
pub const WG: u32 = 256;

/// A compiled kernel: one entry point of one WGSL file.
pub struct Pipe {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
}

#[derive(Default)]
struct Pool {
    free: RefCell<Vec<wgpu::Buffer>>,
    /// Bytes of every activation buffer ever created (free or in use).
    created: std::cell::Cell<u64>,
    /// Bytes ever requested from the pool.
    requested: std::cell::Cell<u64>,
}

/// A pooled f32 storage buffer holding `len` values; returned to the pool on drop.
pub struct GBuf {
    buf: Option<wgpu::Buffer>,
    pub len: usize,
    pool: Rc<Pool>,
}

impl GBuf {
    pub fn raw(&self) -> &wgpu::Buffer {
        // Only `Drop` takes the buffer out.
        self.buf.as_ref().expect("GBuf used after drop")
    }
}

impl Drop for GBuf {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            self.pool.free.borrow_mut().push(b);
        }
    }
}

impl std::ops::Deref for GBuf {
    type Target = wgpu::Buffer;
    fn deref(&self) -> &wgpu::Buffer {
        self.raw()
    }
}

pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
    pipes: HashMap<(&'static str, &'static str), Pipe>,
    pool: Rc<Pool>,
    encoder: RefCell<Option<wgpu::CommandEncoder>>,
    errors: Arc<Mutex<Vec<String>>>,
    /// Bound where a kernel's optional input is absent (bindings cannot be left empty).
    pub dummy: wgpu::Buffer,
    /// Per-kernel `(dispatches, seconds)` when profiling (native only, `RUAC_GPU_PROFILE=1`):
    /// each dispatch is then submitted and waited for on its own.
    profile: Option<RefCell<HashMap<&'static str, (usize, f64)>>>,
    force_cpu_kernels: Option<bool>,
    /// The device was created with `shader-f16` (and the f16 matmul compiled).
    f16_available: bool,
    f16_weights: bool,
    /// Bytes created by `upload` so far (weights are uploaded once, so a model's share is
    /// the difference across its construction).
    uploaded: std::cell::Cell<u64>,
}

/// The outcome of a GPU callback and the waker of the task awaiting it.
type Shared = Arc<Mutex<(Option<std::result::Result<(), wgpu::BufferAsyncError>>, Option<Waker>)>>;

/// Waits for a `map_async` / work-done callback (wasm has no blocking wait; native polls
/// the device).
struct MapWait {
    state: Shared,
}

impl Future for MapWait {
    type Output = std::result::Result<(), wgpu::BufferAsyncError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut st = match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        match st.0.take() {
            Some(r) => Poll::Ready(r),
            None => {
                st.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Workgroup counts for `n` threads of a 1-D kernel, folded into y past the per-dimension
/// limit (kernels compute `i = gid.x + gid.y * num_workgroups.x * WG`).
pub fn groups_1d(n: usize) -> (u32, u32, u32) {
    let total = n.div_ceil(WG as usize).max(1);
    if total <= 65535 {
        (total as u32, 1, 1)
    } else {
        (65535, total.div_ceil(65535) as u32, 1)
    }
}

impl Gpu {
    /// Requests an adapter (high performance first) and a device with the limits the
    /// kernels need; `Gpu::new` (in `kernels`) then compiles every kernel.
    pub(crate) async fn open(limits: Limits, adapter_index: Option<usize>) -> Result<Self> {
        let adapter = match adapter_index {
            Some(i) => pick_adapter(i).await?,
            None => default_adapter().await?,
        };
        let have = adapter.limits();
        let need = needed_limits(&have, limits);
        check_limits(&need, &have)?;
        // f16 weights where the adapter offers them (issue #5); RUAC_GPU_F32=1 opts out.
        let f16_available = adapter.features().contains(wgpu::Features::SHADER_F16)
            && !(cfg!(not(target_arch = "wasm32")) && std::env::var("RUAC_GPU_F32").is_ok_and(|v| v == "1"));
        let required_features = if f16_available { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("ruac-gpu"),
                required_features,
                required_limits: need.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let dummy = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("dummy"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let gpu = Self {
            device,
            queue,
            info: adapter.get_info(),
            limits: need,
            pipes: HashMap::new(),
            pool: Rc::new(Pool::default()),
            encoder: RefCell::new(None),
            errors,
            dummy,
            profile: if cfg!(not(target_arch = "wasm32")) && std::env::var("RUAC_GPU_PROFILE").is_ok_and(|v| v == "1") {
                Some(RefCell::new(HashMap::new()))
            } else {
                None
            },
            force_cpu_kernels: None,
            f16_available,
            f16_weights: f16_available,
            uploaded: Default::default(),
        };
        Ok(gpu)
    }

    /// Compiles one WGSL file's entry points inside an error scope (a WGSL error becomes
    /// [`GpuError::Shader`]).
    pub(crate) async fn compile(&mut self, name: &'static str, src: &str, entries: &[&'static str]) -> Result<()> {
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(name),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let mut pipes = Vec::new();
        for &entry in entries {
            let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
            let layout = pipeline.get_bind_group_layout(0);
            pipes.push((entry, Pipe { pipeline, layout }));
        }
        if let Some(err) = scope.pop().await {
            return Err(GpuError::Shader { kernel: name, message: err.to_string() });
        }
        for (entry, p) in pipes {
            self.pipes.insert((name, entry), p);
        }
        Ok(())
    }

    /// True for software adapters (lavapipe, SwiftShader, WARP): some kernels then take a
    /// variant without workgroup memory.
    pub fn is_cpu(&self) -> bool {
        self.force_cpu_kernels.unwrap_or(self.info.device_type == wgpu::DeviceType::Cpu)
    }

    /// Forces the kernel variants (`Some(true)`: CPU variants) regardless of the adapter, so
    /// tests cover both on any machine.
    pub fn set_cpu_kernels(&mut self, cpu: Option<bool>) {
        self.force_cpu_kernels = cpu;
    }

    /// Total bytes uploaded with [`Gpu::upload`].
    pub fn uploaded_bytes(&self) -> u64 {
        self.uploaded.get()
    }

    /// Whether the device has `shader-f16` (weights can be stored in half precision).
    pub fn f16_available(&self) -> bool {
        self.f16_available
    }

    /// Whether weights uploaded from now on are stored as f16 (the default where available).
    pub fn f16_weights(&self) -> bool {
        self.f16_weights
    }

    /// Chooses f32 or f16 storage for weights uploaded from now on; f16 needs `shader-f16`.
    pub fn set_f16_weights(&mut self, on: bool) -> Result<()> {
        if on && !self.f16_available {
            return Err(GpuError::Unsupported(format!("f16 weights: the adapter {} lacks the shader-f16 feature", self.info.name)));
        }
        self.f16_weights = on;
        Ok(())
    }

    pub fn adapter_info(&self) -> String {
        format!("{:?}: {} ({}; {})", self.info.backend, self.info.name, self.info.driver, self.info.driver_info)
    }

    /// The largest number of f32 values one binding may hold (a buffer is always bound
    /// whole, so this is also the largest activation).
    pub fn max_binding_values(&self) -> usize {
        (self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size) / 4) as usize
    }

    /// How many items of `values_each` f32 values fit in one binding (at least 1: an item
    /// that alone does not fit fails in [`Gpu::alloc`] with the limit named). Layers whose
    /// whole output would not bind process their rows or windows in groups of this size.
    pub fn items_per_binding(&self, values_each: usize) -> usize {
        (self.max_binding_values() / values_each.max(1)).max(1)
    }

    /// A pooled buffer for `len` f32 values (contents undefined).
    pub fn alloc(&self, len: usize) -> Result<GBuf> {
        let bytes = ((len.max(4) * 4) as u64).div_ceil(256) * 256;
        if bytes > self.limits.max_storage_buffer_binding_size || bytes > self.limits.max_buffer_size {
            return Err(GpuError::LimitTooSmall {
                limit: "max_storage_buffer_binding_size",
                need: bytes,
                have: self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size),
            });
        }
        self.pool.requested.set(self.pool.requested.get() + bytes);
        let mut free = self.pool.free.borrow_mut();
        // Best fit among free buffers not more than 4x too large.
        let mut best: Option<usize> = None;
        for (i, b) in free.iter().enumerate() {
            let s = b.size();
            if s >= bytes && s <= bytes.saturating_mul(4) && best.is_none_or(|j| s < free[j].size()) {
                best = Some(i);
            }
        }
        let buf = match best {
            Some(i) => free.swap_remove(i),
            None => {
                self.pool.created.set(self.pool.created.get() + bytes);
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("activation"),
                    size: bytes,
                    usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        Ok(GBuf { buf: Some(buf), len, pool: self.pool.clone() })
    }

    /// Bytes of all activation buffers created so far (in use or pooled): constant once
    /// the pool has warmed up, as buffers are reused across layers and calls.
    pub fn activation_bytes(&self) -> u64 {
        self.pool.created.get()
    }

    /// Bytes requested from the pool so far (what allocating every activation anew would
    /// have cost).
    pub fn requested_bytes(&self) -> u64 {
        self.pool.requested.get()
    }

    /// A new, unpooled storage buffer with the given contents (weights, uploads).
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        // Storage bindings must be non-empty and 4-byte aligned.
        let mut padded;
        let contents = if bytes.len() < 16 || !bytes.len().is_multiple_of(4) {
            padded = bytes.to_vec();
            padded.resize(bytes.len().max(16).div_ceil(4) * 4, 0);
            &padded[..]
        } else {
            bytes
        };
        self.uploaded.set(self.uploaded.get() + contents.len() as u64);
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        })
    }

    /// Uploads f32 values into a pooled buffer (through a fresh staging copy, so it is
    /// ordered with the recorded work that may still use the pooled buffer).
    pub fn upload_pooled(&self, data: &[f32]) -> Result<GBuf> {
        let out = self.alloc(data.len())?;
        let src = self.upload("upload", data);
        self.copy(&src, 0, &out, 0, data.len());
        Ok(out)
    }

    fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut enc = self.encoder.borrow_mut();
        let e = enc.get_or_insert_with(|| self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("ruac") }));
        f(e)
    }

    /// Copies `len` f32 values between buffers (offsets in values).
    pub fn copy(&self, src: &wgpu::Buffer, src_off: usize, dst: &wgpu::Buffer, dst_off: usize, len: usize) {
        if len == 0 {
            return;
        }
        self.with_encoder(|e| e.copy_buffer_to_buffer(src, (src_off * 4) as u64, dst, (dst_off * 4) as u64, Some((len * 4) as u64)));
    }

    /// Records one dispatch: `params` at binding 0 (uniform), `bufs` at bindings 1...
    pub fn dispatch(&self, kernel: (&'static str, &'static str), params: &[u32], bufs: &[&wgpu::Buffer], groups: (u32, u32, u32)) -> Result<()> {
        let at: Vec<(u32, &wgpu::Buffer)> = bufs.iter().enumerate().map(|(i, b)| (i as u32 + 1, *b)).collect();
        self.dispatch_at(kernel, params, &at, groups)
    }

    /// [`Gpu::dispatch`] with explicit binding numbers.
    pub fn dispatch_at(&self, kernel: (&'static str, &'static str), params: &[u32], bufs: &[(u32, &wgpu::Buffer)], groups: (u32, u32, u32)) -> Result<()> {
        let pipe = self.pipes.get(&kernel).ok_or(GpuError::Internal(format!("kernel {}::{} was not compiled", kernel.0, kernel.1)))?;
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.0 > max || groups.1 > max || groups.2 > max {
            return Err(GpuError::LimitTooSmall { limit: "max_compute_workgroups_per_dimension", need: groups.0.max(groups.1).max(groups.2) as u64, have: max as u64 });
        }
        if groups.0 == 0 || groups.1 == 0 || groups.2 == 0 {
            return Ok(());
        }
        let mut p = params.to_vec();
        p.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let ub = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::cast_slice(&p),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: ub.as_entire_binding() }];
        for (binding, b) in bufs {
            entries.push(wgpu::BindGroupEntry { binding: *binding, resource: b.as_entire_binding() });
        }
        let bg = self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(kernel.1), layout: &pipe.layout, entries: &entries });
        self.with_encoder(|e| {
            let mut pass = e.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(kernel.1), timestamp_writes: None });
            pass.set_pipeline(&pipe.pipeline);
            pass.set_bind_group(0, &bg, &[]);
            pass.dispatch_workgroups(groups.0, groups.1, groups.2);
        });
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(prof) = &self.profile {
            let t = std::time::Instant::now();
            self.flush()?;
            self.poll()?;
            let mut p = prof.borrow_mut();
            let e = p.entry(kernel.1).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += t.elapsed().as_secs_f64();
        }
        Ok(())
    }

    /// The per-kernel profile collected so far, slowest first, and resets it (empty unless
    /// `RUAC_GPU_PROFILE=1`).
    pub fn take_profile(&self) -> Vec<(&'static str, usize, f64)> {
        let Some(prof) = &self.profile else { return vec![] };
        let mut v: Vec<_> = prof.borrow_mut().drain().map(|(k, (n, s))| (k, n, s)).collect();
        v.sort_by(|a, b| b.2.total_cmp(&a.2));
        v
    }

    fn take_errors(&self) -> Result<()> {
        let mut v = match self.errors.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        if v.is_empty() {
            Ok(())
        } else {
            let msg = v.join("; ");
            v.clear();
            Err(GpuError::Validation(msg))
        }
    }

    /// Submits the recorded work.
    pub fn flush(&self) -> Result<()> {
        if let Some(enc) = self.encoder.borrow_mut().take() {
            self.queue.submit(Some(enc.finish()));
        }
        self.take_errors()
    }

    /// Submits the recorded work and waits for it (native: blocks; web: awaits).
    pub async fn sync(&self) -> Result<()> {
        self.flush()?;
        let state = Arc::new(Mutex::new((None, None::<Waker>)));
        let st = state.clone();
        self.queue.on_submitted_work_done(move || {
            let mut s = match st.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            s.0 = Some(Ok(()));
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        self.poll()?;
        MapWait { state }.await.map_err(|e| GpuError::Mapping(e.to_string()))?;
        self.take_errors()
    }

    fn poll(&self) -> Result<()> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Device(e.to_string()))?;
        Ok(())
    }

    /// Reads `len` f32 values starting at value `off` of `src`.
    pub async fn read(&self, src: &wgpu::Buffer, off: usize, len: usize) -> Result<Vec<f32>> {
        let bytes: Vec<u8> = self.read_bytes(src, off * 4, len * 4).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    /// Reads `len` bytes at byte offset `off` (both multiples of 4).
    pub async fn read_bytes(&self, src: &wgpu::Buffer, off: usize, len: usize) -> Result<Vec<u8>> {
        if len == 0 {
            return Ok(vec![]);
        }
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: len as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.with_encoder(|e| e.copy_buffer_to_buffer(src, off as u64, &staging, 0, Some(len as u64)));
        self.flush()?;
        let state = Arc::new(Mutex::new((None, None::<Waker>)));
        let st = state.clone();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let mut s = match st.lock() {
                Ok(s) => s,
                Err(p) => p.into_inner(),
            };
            s.0 = Some(r);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        self.poll()?;
        MapWait { state }.await.map_err(|e| GpuError::Mapping(e.to_string()))?;
        self.take_errors()?;
        let out = staging.slice(..).get_mapped_range().map_err(|e| GpuError::Mapping(e.to_string()))?.to_vec();
        staging.unmap();
        Ok(out)
    }
}
