//! The MPI gradient sum (`--features mpi`): `MPI_Allreduce` over `MPI_COMM_WORLD` on host
//! copies of the flat gradients, through rsmpi. For CPU processes, and for GPUs on machines
//! without NCCL.
use anyhow::Result;
use candle_core::{Device, Tensor};
use mpi::collective::SystemOperation;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::CommunicatorCollectives;
use ruac_core::method::train::GradientSum;

pub struct MpiSum {
    // Finalises MPI when dropped, after the communicator.
    world: SimpleCommunicator,
    _universe: mpi::environment::Universe,
}

impl MpiSum {
    pub fn init() -> Result<Self> {
        let universe = mpi::initialize().ok_or_else(|| anyhow::anyhow!("MPI was initialised twice"))?;
        Ok(Self { world: universe.world(), _universe: universe })
    }
}

impl GradientSum for MpiSum {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn world(&self) -> usize {
        self.world.size() as usize
    }
    fn sum(&mut self, flat: Tensor) -> ruac_core::Result<Tensor> {
        let device = flat.device().clone();
        let send = flat.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
        let mut recv = vec![0f32; send.len()];
        self.world.all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
        Ok(Tensor::from_vec(recv, send.len(), &device)?)
    }
}
