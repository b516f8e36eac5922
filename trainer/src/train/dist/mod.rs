//! Data-parallel training across processes, the way PyTorch users run DDP: one process per
//! device, the rank and world size from the launcher's environment (`mpirun`, `srun`,
//! `torchrun`), gradients summed every step by ruac-core's `TrainStep` through a
//! [`GradientSum`]: NCCL (`--features nccl`) between CUDA devices, MPI (`--features mpi`,
//! e.g. Debian's OpenMPI) for CPU processes and machines without NCCL. Rank 0 alone writes logs and checkpoints; every rank resumes from
//! the same checkpoint, and since a step's samples and random draws are functions of the
//! seed, the step and the rank, that restores every rank's data position and random state.
use anyhow::{bail, Result};
use ruac_core::method::train::{GradientSum, Solo};

#[cfg(feature = "mpi")]
mod mpi;
#[cfg(feature = "nccl")]
mod nccl;
pub mod rendezvous;

/// Where this process stands in its run, from the launcher's environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    /// Rank among the processes of this machine (`cuda` picks `cuda:<local rank>`).
    pub local_rank: usize,
    /// Which launcher's variables these came from (`single` when none).
    pub launcher: &'static str,
}

/// The launchers' variables, in the order they are read: Open MPI's `mpirun`, MPICH's
/// Hydra (PMI), `torchrun` (and anything that sets its variables), SLURM's `srun`.
const LAUNCHERS: [(&str, &str, &str, &str); 4] = [
    ("mpirun (Open MPI)", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK"),
    ("mpiexec (MPICH)", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"),
    ("torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK"),
    ("srun (SLURM)", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"),
];

impl Launch {
    /// Reads the first launcher whose rank and size are both set, through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        for (launcher, rank, size, local) in LAUNCHERS {
            let (Some(r), Some(w)) = (var(rank), var(size)) else { continue };
            let num = |name: &str, v: &str| v.trim().parse::<usize>().map_err(|_| anyhow::anyhow!("{launcher}: {name}={v:?} is not a number"));
            let (rank_n, world) = (num(rank, &r)?, num(size, &w)?);
            if world == 0 || rank_n >= world {
                bail!("{launcher}: rank {rank_n} of {world} processes ({rank}, {size})");
            }
            let local_rank = match var(local) {
                Some(l) => num(local, &l)?,
                None => 0,
            };
            return Ok(Self { rank: rank_n, world, local_rank, launcher });
        }
        Ok(Self { rank: 0, world: 1, local_rank: 0, launcher: "single" })
    }

    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    pub fn is_main(&self) -> bool {
        self.rank == 0
    }
}

/// Which engine sums the gradients (`train --dist-backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// NCCL when the process trains on CUDA and the trainer has the `nccl` feature, MPI
    /// otherwise; nothing at all for a single process.
    Auto,
    /// MPI (`--features mpi`): CPU processes, or GPUs on machines without NCCL.
    Mpi,
    /// NCCL (`--features nccl`): one CUDA device per process; rank 0 hands out NCCL's id
    /// through the rendezvous at MASTER_ADDR:MASTER_PORT. Asked for by name, it runs even
    /// for a single process (a check of the path on one GPU).
    Nccl,
}

/// The gradient sum for this launch on `device`.
pub fn gradient_sum(launch: &Launch, backend: Backend, device: &candle_core::Device) -> Result<Box<dyn GradientSum>> {
    match backend {
        Backend::Auto if launch.world == 1 => Ok(Box::new(Solo)),
        Backend::Auto if device.is_cuda() && cfg!(feature = "nccl") => nccl_sum(launch, device),
        Backend::Auto | Backend::Mpi => mpi_sum(launch),
        Backend::Nccl => nccl_sum(launch, device),
    }
}

#[cfg(feature = "nccl")]
fn nccl_sum(launch: &Launch, device: &candle_core::Device) -> Result<Box<dyn GradientSum>> {
    let rdv = rendezvous::Rendezvous::from_env()?;
    Ok(Box::new(nccl::NcclSum::init(launch, device, &rdv)?))
}

#[cfg(not(feature = "nccl"))]
fn nccl_sum(launch: &Launch, _device: &candle_core::Device) -> Result<Box<dyn GradientSum>> {
    bail!(
        "{} asked for NCCL, but this trainer was built without it: build it with `--features nccl` (CUDA and libnccl; tools/build_cuda.sh), or use --dist-backend mpi",
        launch.launcher
    )
}

#[cfg(feature = "mpi")]
fn mpi_sum(launch: &Launch) -> Result<Box<dyn GradientSum>> {
    let sum = mpi::MpiSum::init()?;
    if (sum.rank(), sum.world()) != (launch.rank, launch.world) {
        bail!(
            "{} says rank {} of {}, but MPI has rank {} of {}: launch the processes with mpirun or srun (MPI sums the gradients), not with torchrun, or use --dist-backend nccl",
            launch.launcher,
            launch.rank,
            launch.world,
            sum.rank(),
            sum.world()
        );
    }
    Ok(Box::new(sum))
}

#[cfg(not(feature = "mpi"))]
fn mpi_sum(launch: &Launch) -> Result<Box<dyn GradientSum>> {
    bail!(
        "{} started {} processes, but this trainer was built without MPI: build it with `cargo build --release -p trainer --features mpi` (needs an MPI library, e.g. apt-get install libopenmpi-dev), or on CUDA with `--features nccl`",
        launch.launcher,
        launch.world
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn launch(vars: &[(&str, &str)]) -> Result<Launch> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Launch::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn every_launcher_is_read() {
        assert_eq!(launch(&[]).unwrap(), Launch { rank: 0, world: 1, local_rank: 0, launcher: "single" });
        let l = launch(&[("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1")]).unwrap();
        assert_eq!((l.rank, l.world, l.local_rank, l.launcher), (1, 2, 1, "mpirun (Open MPI)"));
        let l = launch(&[("RANK", "3"), ("WORLD_SIZE", "8"), ("LOCAL_RANK", "3")]).unwrap();
        assert_eq!((l.rank, l.world, l.local_rank, l.launcher), (3, 8, 3, "torchrun"));
        let l = launch(&[("SLURM_PROCID", "5"), ("SLURM_NTASKS", "16"), ("SLURM_LOCALID", "1")]).unwrap();
        assert_eq!((l.rank, l.world, l.local_rank), (5, 16, 1));
        // mpirun's variables win over torchrun's when both are set.
        let l = launch(&[("RANK", "0"), ("WORLD_SIZE", "1"), ("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2")]).unwrap();
        assert_eq!((l.rank, l.world), (1, 2));
        assert!(launch(&[("RANK", "2"), ("WORLD_SIZE", "2")]).unwrap_err().to_string().contains("rank 2 of 2"));
        assert!(launch(&[("RANK", "x"), ("WORLD_SIZE", "2")]).unwrap_err().to_string().contains("RANK=\"x\" is not a number"));
    }

    #[test]
    fn one_process_needs_no_backend() {
        let cpu = candle_core::Device::Cpu;
        let s = gradient_sum(&launch(&[]).unwrap(), Backend::Auto, &cpu).unwrap();
        assert_eq!((s.rank(), s.world()), (0, 1));
        let two = launch(&[("RANK", "0"), ("WORLD_SIZE", "2")]).unwrap();
        if !cfg!(feature = "mpi") {
            let e = gradient_sum(&two, Backend::Auto, &cpu).err().unwrap().to_string();
            assert!(e.contains("built without MPI"), "{e}");
        }
        // NCCL asked for by name: a clear error without the feature, or without CUDA.
        let e = gradient_sum(&two, Backend::Nccl, &cpu).err().unwrap().to_string();
        let expect = if cfg!(feature = "nccl") { "NCCL sums gradients between CUDA devices" } else { "built without it" };
        assert!(e.contains(expect), "{e}");
    }
}
