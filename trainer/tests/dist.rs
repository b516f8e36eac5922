//! Data-parallel training over MPI (issue 17, item 2), with 2 processes on this machine's
//! cores: `mpirun -np 2` training with both attackers ends with the parameters of one
//! process that accumulates the same samples' gradients (`grad_accum = 2`), within float
//! rounding; a rank killed mid-run stops the other with an error instead of a hang, and the
//! run resumes from its last checkpoint to the same parameters. Needs a `--features mpi`
//! build and Open MPI (`make test-dist`).
#![cfg(feature = "mpi")]
mod common;
use common::train_config;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::Tensor;

const RUAC: &str = "bayes_head = true\nfreeze_image_encoder = true\n\n[weights]\nkl_from = 0.0\nadv_from = 0.0\n\n[attack]\nstyle = true\ndeform = true\neps_style = 0.3\neps_deform = 0.15";
const STEPS: usize = 10;

fn mpirun(np: usize, cfg: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new("mpirun");
    // Root in containers and CI; more ranks than cores; shared memory without ptrace.
    c.env("OMPI_ALLOW_RUN_AS_ROOT", "1").env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1");
    c.args(["-np", &np.to_string(), "--oversubscribe", "--tag-output", "--mca", "btl_vader_single_copy_mechanism", "none"]);
    c.arg(env!("CARGO_BIN_EXE_trainer")).args(["train", "--quiet", "--config"]).arg(cfg).arg("--out").arg(out).args(extra);
    c
}

fn single(cfg: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_trainer")).args(["train", "--quiet", "--config"]).arg(cfg).arg("--out").arg(out).args(extra).output().unwrap()
}

fn checkpoint(run: &Path, step: usize) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(run.join(format!("checkpoints/step_{step:07}.safetensors")), &candle_core::Device::Cpu).unwrap()
}

/// The largest difference between the trained parameters of two checkpoints (the optimiser
/// moments included), and how many tensors were compared.
fn max_diff(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> (f32, usize) {
    let mut worst = 0f32;
    let mut n = 0;
    for (k, ta) in a {
        let tb = b.get(k).unwrap_or_else(|| panic!("{k} missing"));
        if !ta.dtype().is_float() {
            continue;
        }
        let d = (ta.to_dtype(candle_core::DType::F32).unwrap() - tb.to_dtype(candle_core::DType::F32).unwrap()).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
        worst = worst.max(d);
        n += 1;
    }
    (worst, n)
}

fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap()).collect()
}

#[test]
fn two_processes_equal_one_accumulating_their_samples_and_survive_a_dead_rank() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = train_config(dir.path(), "ruac", RUAC, STEPS);
    let (two, one, killed): (PathBuf, PathBuf, PathBuf) = (dir.path().join("two"), dir.path().join("one"), dir.path().join("killed"));

    // 2 ranks x 1 sample per step = 1 process x 2 accumulated samples.
    let o = mpirun(2, &cfg, &two, &[]).output().unwrap();
    assert!(o.status.success(), "mpirun: {}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rank 0/2") && err.contains("rank 1/2"), "{err}");
    let o = single(&cfg, &one, &["--set", "train.grad_accum=2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (d, n) = max_diff(&checkpoint(&two, STEPS), &checkpoint(&one, STEPS));
    eprintln!("mpirun -np 2 vs one process accumulating 2: {n} tensors, max abs difference {d:.2e}");
    assert!(n > 50 && d <= 1e-4, "parameters differ by {d} over {n} tensors");
    let (lt, lo) = (losses(&two), losses(&one));
    assert_eq!(lt.len(), STEPS, "rank 0 alone writes the log, one line per step");
    assert!(lt.iter().zip(&lo).all(|(a, b)| (a - b).abs() <= 1e-4 * b.abs().max(1.0)), "losses {lt:?} vs {lo:?}");
    let rec: serde_json::Value = serde_json::from_str(std::fs::read_to_string(two.join("log.jsonl")).unwrap().lines().last().unwrap()).unwrap();
    assert!(rec["adv_seg"].as_f64().unwrap() > 0.0 && rec["cal"].as_f64().unwrap() > 0.0, "both attackers and the UAA loss ran: {rec}");

    // A rank killed after the first checkpoint: mpirun ends (no hang) with an error.
    let mut child = mpirun(2, &cfg, &killed, &[]).stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let t0 = Instant::now();
    let first = killed.join("checkpoints/step_0000002.safetensors");
    while !first.exists() {
        assert!(t0.elapsed() < Duration::from_secs(300), "no checkpoint after 5 minutes: {}", log.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = log.lock().unwrap().clone();
    let pid = text.lines().find(|l| l.contains("rank 1/2")).and_then(|l| l.split("pid ").nth(1)).and_then(|s| s.split(')').next()).expect("rank 1 reports its pid");
    assert!(Command::new("kill").args(["-9", pid]).status().unwrap().success());
    let t1 = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t1.elapsed() < Duration::from_secs(60), "rank 0 hangs after rank 1 died");
        std::thread::sleep(Duration::from_millis(100));
    };
    reader.join().unwrap();
    let text = log.lock().unwrap().clone();
    assert!(!status.success(), "a dead rank must fail the run");
    assert!(text.contains("signal 9") || text.contains("rank 1"), "the error names the dead process: {text}");
    let done: Vec<_> = std::fs::read_dir(killed.join("checkpoints")).unwrap().flatten().collect();
    assert!(!done.is_empty());
    eprintln!("killed rank 1 (pid {pid}): mpirun stopped after {:.1} s", t1.elapsed().as_secs_f64());

    // Resumed from its last checkpoint, the run ends where the uninterrupted one did.
    let o = mpirun(2, &cfg, &killed, &["--resume"]).output().unwrap();
    assert!(o.status.success(), "resume: {}", String::from_utf8_lossy(&o.stderr));
    let (d, _) = max_diff(&checkpoint(&killed, STEPS), &checkpoint(&two, STEPS));
    assert!(d <= 1e-6, "the resumed run differs from the uninterrupted one by {d}");
    assert_eq!(losses(&killed).len(), STEPS);
}
