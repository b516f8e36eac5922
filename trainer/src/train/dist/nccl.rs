//! The NCCL gradient sum (`--features nccl`): one CUDA device per process, `ncclAllReduce`
//! on the flat gradients where they lie, on candle's own stream of the device, so the sum
//! is ordered after the backward pass that made them and before the optimiser step that
//! reads them. NCCL's unique id travels from rank 0 through the TCP rendezvous.
use super::rendezvous::Rendezvous;
use super::Launch;
use anyhow::{anyhow, bail, Result};
use candle_core::cuda::cudarc::nccl::safe::{Comm, Id, ReduceOp};
use candle_core::cuda::{CudaDevice, CudaStorage};
use candle_core::op::BackpropOp;
use candle_core::{Device, Storage, Tensor};
use ruac_core::method::train::GradientSum;

pub struct NcclSum {
    comm: Comm,
    device: CudaDevice,
}

impl NcclSum {
    pub fn init(launch: &Launch, device: &Device, rdv: &Rendezvous) -> Result<Self> {
        let Device::Cuda(cuda) = device else {
            bail!("NCCL sums gradients between CUDA devices, and this process trains on {device:?}: use --device cuda, or --dist-backend mpi");
        };
        let bytes = rdv.share(launch.rank, launch.world, || {
            let id = Id::new().map_err(|e| anyhow!("NCCL could not make its unique id: {e:?}"))?;
            Ok(id.internal().iter().map(|&c| c as u8).collect())
        })?;
        let mut internal = [0 as std::ffi::c_char; 128];
        if bytes.len() != internal.len() {
            bail!("the rendezvous handed out {} bytes, not NCCL's 128-byte id", bytes.len());
        }
        for (dst, src) in internal.iter_mut().zip(&bytes) {
            *dst = *src as std::ffi::c_char;
        }
        let comm = Comm::from_rank(cuda.cuda_stream(), launch.rank, launch.world, Id::uninit(internal))
            .map_err(|e| anyhow!("NCCL could not join rank {} of {}: {e:?}", launch.rank, launch.world))?;
        Ok(Self { comm, device: cuda.clone() })
    }
}

fn nccl_err(what: &str, e: impl std::fmt::Debug) -> ruac_core::Error {
    ruac_core::Error::Device(format!("NCCL {what}: {e:?}"))
}

impl GradientSum for NcclSum {
    fn rank(&self) -> usize {
        self.comm.rank()
    }
    fn world(&self) -> usize {
        self.comm.world_size()
    }
    fn sum(&mut self, flat: Tensor) -> ruac_core::Result<Tensor> {
        let flat = flat.to_device(&Device::Cuda(self.device.clone()))?.contiguous()?;
        let n = flat.elem_count();
        let mut out = self.comm.stream().alloc_zeros::<f32>(n).map_err(|e| nccl_err("allocation", e))?;
        {
            let (storage, layout) = flat.storage_and_layout();
            let Storage::Cuda(cs) = &*storage else {
                return Err(ruac_core::Error::Device("NCCL: the gradients are not on the CUDA device".into()));
            };
            let start = layout.start_offset();
            let send = cs.as_cuda_slice::<f32>()?.slice(start..start + n);
            self.comm.all_reduce(&send, &mut out, &ReduceOp::Sum).map_err(|e| nccl_err("all-reduce", e))?;
        }
        let storage = Storage::Cuda(CudaStorage::wrap_cuda_slice(out, self.device.clone()));
        Ok(Tensor::from_storage(storage, n, BackpropOp::none(), false))
    }
}
