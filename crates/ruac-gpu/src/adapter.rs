//! Which adapter a device opens on and what it asks of it: the adapter wgpu prefers, or
//! adapter `N` of [`list_adapters`] (`--device wgpu:N`); the limits the kernels rely on, and
//! how large the bindings may be ([`Limits`]: the adapter's largest, or WebGPU's defaults).
use crate::error::{GpuError, Result};

/// How large the bindings and buffers asked of the device are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limits {
    /// The adapter's largest (fewer tiles; the default).
    #[default]
    Adapter,
    /// WebGPU's defaults, 128 MiB per storage binding and 256 MiB per buffer, whatever the
    /// adapter offers: what every WebGPU device has (tests and benchmarks of the tiling).
    WebGpuDefault,
}

/// The limits the kernels rely on; checked against the adapter and requested explicitly.
pub(crate) fn needed_limits(adapter: &wgpu::Limits, limits: Limits) -> wgpu::Limits {
    let (binding, buffer) = match limits {
        Limits::Adapter => (adapter.max_storage_buffer_binding_size, adapter.max_buffer_size),
        Limits::WebGpuDefault => {
            let d = wgpu::Limits::default();
            (d.max_storage_buffer_binding_size.min(adapter.max_storage_buffer_binding_size), d.max_buffer_size.min(adapter.max_buffer_size))
        }
    };
    wgpu::Limits {
        max_compute_invocations_per_workgroup: 256,
        max_compute_workgroup_size_x: 256,
        max_compute_workgroup_size_y: 16,
        max_compute_workgroup_size_z: 1,
        max_compute_workgroup_storage_size: 16384,
        max_compute_workgroups_per_dimension: 65535,
        max_storage_buffers_per_shader_stage: 7,
        max_uniform_buffers_per_shader_stage: 1,
        // Take what the adapter offers: bigger bindings mean fewer tiles for large images.
        max_storage_buffer_binding_size: binding,
        max_buffer_size: buffer,
        ..wgpu::Limits::downlevel_defaults()
    }
}

pub(crate) fn check_limits(need: &wgpu::Limits, have: &wgpu::Limits) -> Result<()> {
    let checks: [(&str, u64, u64); 7] = [
        ("max_compute_invocations_per_workgroup", need.max_compute_invocations_per_workgroup as u64, have.max_compute_invocations_per_workgroup as u64),
        ("max_compute_workgroup_size_x", need.max_compute_workgroup_size_x as u64, have.max_compute_workgroup_size_x as u64),
        ("max_compute_workgroup_size_y", need.max_compute_workgroup_size_y as u64, have.max_compute_workgroup_size_y as u64),
        ("max_compute_workgroup_storage_size", need.max_compute_workgroup_storage_size as u64, have.max_compute_workgroup_storage_size as u64),
        ("max_compute_workgroups_per_dimension", need.max_compute_workgroups_per_dimension as u64, have.max_compute_workgroups_per_dimension as u64),
        ("max_storage_buffers_per_shader_stage", need.max_storage_buffers_per_shader_stage as u64, have.max_storage_buffers_per_shader_stage as u64),
        // Below 16 MiB the activations of even the micro model at 1024 px would not bind.
        ("max_storage_buffer_binding_size", 16 << 20, have.max_storage_buffer_binding_size),
    ];
    for (name, need, have) in checks {
        if have < need {
            return Err(GpuError::LimitTooSmall { limit: name, need, have });
        }
    }
    Ok(())
}


/// The adapter wgpu prefers: Vulkan/Metal/DX12/WebGPU first, GL only when none of them has
/// one (probing EGL needs a display server on some systems). WGPU_BACKEND overrides both.
pub(crate) async fn default_adapter() -> Result<wgpu::Adapter> {
    let from_env = std::env::var("WGPU_BACKEND").is_ok();
    let mut adapter = Err(GpuError::NoAdapter("no backend tried".into()));
    for backends in [wgpu::Backends::PRIMARY, wgpu::Backends::all()] {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        if !from_env {
            desc.backends = backends;
        }
        let instance = wgpu::Instance::new(desc);
        adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()));
        if adapter.is_ok() || from_env {
            break;
        }
    }
    adapter
}

/// Every adapter of the primary backends (Vulkan, Metal, DX12; WGPU_BACKEND overrides), in
/// the order `wgpu:N` counts them.
async fn all_adapters() -> Vec<wgpu::Adapter> {
    let backends = wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY);
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    desc.backends = backends;
    wgpu::Instance::new(desc).enumerate_adapters(backends).await
}

/// The adapters `wgpu:N` can name, as `"N: backend name (type)"`.
pub async fn list_adapters() -> Vec<String> {
    all_adapters()
        .await
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let info = a.get_info();
            format!("{i}: {:?} {} ({:?})", info.backend, info.name, info.device_type)
        })
        .collect()
}

/// Adapter `i` of [`list_adapters`]; an error naming the ones there are.
pub(crate) async fn pick_adapter(i: usize) -> Result<wgpu::Adapter> {
    let mut all = all_adapters().await;
    if i < all.len() {
        return Ok(all.swap_remove(i));
    }
    let names = list_adapters().await;
    Err(GpuError::NoAdapter(if names.is_empty() {
        format!("adapter {i} was asked for, and this machine has no wgpu adapter (a Vulkan, Metal or DX12 driver; on Linux without a GPU, Mesa's lavapipe: apt-get install mesa-vulkan-drivers)")
    } else {
        format!("adapter {i} was asked for; this machine has {}: {}", names.len(), names.join("; "))
    }))
}

