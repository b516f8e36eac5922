//! `--device` of every command: `cpu`, `cuda:N` (a `--features cuda` build) and, for
//! `segment` and `eval`, `wgpu` / `wgpu:N` (ruac-gpu natively: Vulkan, Metal, DX12; `N`
//! counts the adapters as `ruac_gpu::gpu::list_adapters` lists them). A device that is asked
//! for and missing is an error that names it, never a silent fallback to the CPU.
use anyhow::{bail, Context, Result};
use candle_core::Device;
use ruac_core::checkpoint::Checkpoint;
use ruac_core::image_io::RgbImage;
use ruac_core::model::ModelConfig;
use ruac_core::predictor::{Prediction, Predictor, Prompt, PromptModel, UncertaintyMode};
use ruac_gpu::{GpuOptions, GpuPredictor};

/// A parsed `--device`.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    /// ruac-gpu on adapter `N`, or the one wgpu prefers.
    Wgpu(Option<usize>),
}

impl DeviceSpec {
    pub fn parse(spec: &str) -> Result<Self> {
        let index = |s: &str| s.parse::<usize>().with_context(|| format!("bad device {spec:?}: the index must be a number"));
        Ok(match spec.trim() {
            "cpu" => DeviceSpec::Cpu,
            "wgpu" => DeviceSpec::Wgpu(None),
            s if s.starts_with("cuda:") => DeviceSpec::Cuda(index(&s[5..])?),
            s if s.starts_with("wgpu:") => DeviceSpec::Wgpu(Some(index(&s[5..])?)),
            _ => bail!("unknown device {spec:?}: use cpu, cuda:N or wgpu[:N]"),
        })
    }
}

/// The candle device of `spec` (what `train` runs on; wgpu is refused: ruac-gpu has no
/// backward pass).
pub fn candle_device(spec: &str) -> Result<Device> {
    match DeviceSpec::parse(spec)? {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(i) => cuda(i),
        DeviceSpec::Wgpu(_) => bail!("device {spec:?}: training runs on cpu or cuda:N (ruac-gpu runs inference only: segment and eval)"),
    }
}

#[cfg(feature = "cuda")]
fn cuda(i: usize) -> Result<Device> {
    Device::new_cuda(i).with_context(|| format!("opening CUDA device {i} (cuda:{i})"))
}

#[cfg(not(feature = "cuda"))]
fn cuda(i: usize) -> Result<Device> {
    bail!("device cuda:{i} needs a build with `--features cuda` (tools/build_cuda.sh)")
}

/// `trainer devices`: what `--device` can name on this machine.
pub fn list() -> Result<()> {
    println!("cpu");
    #[cfg(feature = "cuda")]
    for i in 0.. {
        if Device::new_cuda(i).is_err() {
            break;
        }
        println!("cuda:{i}");
    }
    #[cfg(not(feature = "cuda"))]
    println!("(cuda:N needs a build with `--features cuda`)");
    let adapters = pollster::block_on(ruac_gpu::gpu::list_adapters());
    if adapters.is_empty() {
        println!("(no wgpu adapter: a Vulkan, Metal or DX12 driver is needed; on Linux without a GPU, apt-get install mesa-vulkan-drivers)");
    }
    for a in adapters {
        println!("wgpu:{a}");
    }
    Ok(())
}

/// A model on the asked device, for `segment` and `eval`.
pub struct DeviceModel {
    pub model: Box<dyn PromptModel>,
    pub config: ModelConfig,
    /// What runs it: `cpu`, `cuda:0`, or the wgpu adapter's backend and name.
    pub device: String,
}

/// Builds the checkpoint's model (`config` and `image_size` as `Checkpoint::model_config`)
/// on `spec`, answering with `mode`'s uncertainty.
pub fn load_model(ck: &Checkpoint, config: Option<&str>, image_size: Option<usize>, mode: UncertaintyMode, spec: &str) -> Result<DeviceModel> {
    let cfg = ck.model_config(config, image_size)?;
    let (model, device): (Box<dyn PromptModel>, String) = match DeviceSpec::parse(spec)? {
        DeviceSpec::Wgpu(adapter) => {
            // f32 weights: the CLI is held to the CPU's numbers (the page may use f16).
            let opts = GpuOptions { f16_weights: Some(false), default_limits: false, adapter };
            let gpu = pollster::block_on(GpuPredictor::from_config(ck, &cfg, opts)).with_context(|| format!("device {spec}"))?;
            let name = format!("wgpu {}", gpu.adapter_info());
            (Box::new(WgpuModel { gpu, mode }), name)
        }
        _ => {
            let dev = candle_device(spec)?;
            let model = ck.build_base(config, image_size, &dev)?;
            let mut pred = Predictor::new(model, dev);
            pred.mode = mode;
            (Box::new(pred), spec.trim().to_string())
        }
    };
    Ok(DeviceModel { model, config: cfg, device })
}

/// ruac-gpu's predictor as a [`PromptModel`]: its async calls run to completion here (a
/// native device), and its maps come back as CPU tensors.
struct WgpuModel {
    gpu: GpuPredictor,
    mode: UncertaintyMode,
}

fn device_error(e: ruac_gpu::GpuError) -> ruac_core::Error {
    match e {
        ruac_gpu::GpuError::Core(c) => c,
        other => ruac_core::Error::Device(other.to_string()),
    }
}

impl PromptModel for WgpuModel {
    fn set_image(&mut self, image: &RgbImage) -> ruac_core::Result<()> {
        pollster::block_on(self.gpu.set_image(image)).map_err(device_error)
    }

    fn predict(&mut self, prompt: &Prompt) -> ruac_core::Result<Prediction> {
        pollster::block_on(self.gpu.predict(prompt, self.mode)).map_err(device_error)?.to_prediction(&Device::Cpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_specs_parse_or_name_the_problem() {
        assert_eq!(DeviceSpec::parse("cpu").unwrap(), DeviceSpec::Cpu);
        assert_eq!(DeviceSpec::parse("cuda:1").unwrap(), DeviceSpec::Cuda(1));
        assert_eq!(DeviceSpec::parse("wgpu").unwrap(), DeviceSpec::Wgpu(None));
        assert_eq!(DeviceSpec::parse("wgpu:2").unwrap(), DeviceSpec::Wgpu(Some(2)));
        for (bad, says) in [("tpu", "use cpu, cuda:N or wgpu[:N]"), ("cuda:x", "must be a number"), ("wgpu:-1", "must be a number"), ("cuda", "use cpu")] {
            let e = format!("{:#}", DeviceSpec::parse(bad).unwrap_err());
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = candle_device("wgpu").unwrap_err().to_string();
        assert!(e.contains("inference only"), "{e}");
    }
}
