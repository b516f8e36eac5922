//! `trainer train` / `trainer export` end to end on the procedural domain (issue #3): exact
//! resume, a falling loss, the adversarial branch with both attackers, export that loads.
mod common;
use common::train_config as config;

use std::path::Path;
use std::process::Command;

fn trainer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_trainer"))
}

fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
        .collect()
}

fn train(cfg: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    trainer().args(["train", "--quiet", "--config"]).arg(cfg).arg("--out").arg(out).args(extra).output().unwrap()
}

/// The tiny SAM 1 fixture the SAM 1 runs start from.
fn sam1_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/ruac-core/tests/fixtures/sam1_tiny_vit.safetensors")
}

/// The learning rates of the SAM 1 runs: a frozen encoder, a fast head and attackers.
const SAM1_LR: &str = "[lr]
base = [1e-3, 1e-3]
head = [1e-2, 1e-2]
attackers = [1e-2, 1e-2]
vision = [0.0, 0.0]
";

const PLAIN: &str = "bayes_head = false\nfreeze_image_encoder = false\n\n[attack]\nstyle = false\ndeform = false";

#[test]
fn resume_gives_the_losses_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    // The run's length comes from a `--set` override, which resuming must repeat.
    let cfg = config(dir.path(), "plain", PLAIN, 99);
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let o = train(&cfg, &a, &["--set", "train.steps=4"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(losses(&a).len(), 4);
    let o = train(&cfg, &b, &["--set", "train.steps=4", "--max-steps", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(losses(&b).len(), 2);
    // Without --resume an existing run is refused rather than overwritten.
    let o = train(&cfg, &b, &["--set", "train.steps=4"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("--resume"));
    // Resuming under another configuration is refused.
    let o = train(&cfg, &b, &["--set", "train.steps=4", "--set", "train.seed=8", "--resume"]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("different configuration"));
    let o = train(&cfg, &b, &["--set", "train.steps=4", "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(losses(&a), losses(&b), "resumed losses differ from the uninterrupted run");
    let ca = std::fs::read(a.join("checkpoints/step_0000004.safetensors")).unwrap();
    let cb = std::fs::read(b.join("checkpoints/step_0000004.safetensors")).unwrap();
    assert!(ca == cb, "final checkpoints differ");
    // keep_checkpoints = 2
    assert_eq!(std::fs::read_dir(a.join("checkpoints")).unwrap().count(), 2);
}

#[test]
fn a_few_steps_on_procedural_data_lower_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), "plain", PLAIN, 24);
    let run = dir.path().join("run");
    let o = train(&cfg, &run, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let l = losses(&run);
    let first: f64 = l[..6].iter().sum::<f64>() / 6.0;
    let last: f64 = l[l.len() - 6..].iter().sum::<f64>() / 6.0;
    assert!(last < 0.8 * first, "loss did not fall: first {first:.3}, last {last:.3} ({l:?})");
}

#[test]
fn ruac_with_both_attackers_trains_and_exports_an_inference_model() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "bayes_head = true\nfreeze_image_encoder = true\n\n[weights]\nkl_from = 0.0\nadv_from = 0.0\n\n[attack]\nstyle = true\ndeform = true\neps_style = 0.3\neps_deform = 0.15";
    let cfg = config(dir.path(), "ruac", extra, 2);
    let run = dir.path().join("run");
    let o = train(&cfg, &run, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log: Vec<serde_json::Value> = std::fs::read_to_string(run.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for r in &log {
        assert!(r["adv_seg"].as_f64().unwrap() > 0.0 && r["cal"].as_f64().unwrap() > 0.0, "adversarial branch and UAA loss must run: {r}");
        assert!(r["kl"].as_f64().unwrap() > 0.0);
    }
    // The checkpoint holds the attackers; the export drops them and loads as a RUAC model.
    let ck = std::fs::read(run.join("checkpoints/step_0000002.safetensors")).unwrap();
    let names: Vec<String> = safetensors::SafeTensors::deserialize(&ck).unwrap().names().into_iter().map(|s| s.to_string()).collect();
    assert!(names.iter().any(|n| n.starts_with("param.style_attacker.")));
    assert!(names.iter().any(|n| n.starts_with("param.deform_attacker.")));
    for dtype in ["f32", "f16"] {
        let out = dir.path().join(format!("model-{dtype}.safetensors"));
        let o = trainer().args(["export", "--checkpoint"]).arg(&run).arg("--out").arg(&out).args(["--dtype", dtype]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let bytes = std::fs::read(&out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        assert!(st.names().iter().all(|n| !n.starts_with("style_") && !n.starts_with("deform_") && !n.starts_with("memory_encoder.")));
        let ck = ruac_core::checkpoint::Checkpoint::load(&out).unwrap();
        let cfg = ck.infer_config().unwrap();
        assert_eq!(cfg.image_size, 128, "the export records its input size");
        assert!(cfg.bayes_head.is_some());
    }
    // A corrupt checkpoint is refused with a message naming it.
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, &ck[..ck.len() / 2]).unwrap();
    let o = trainer().args(["export", "--checkpoint"]).arg(&bad).arg("--out").arg(dir.path().join("x.safetensors")).output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.safetensors"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn bad_configs_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[model]\nconfig = \"micro\"\n[data]\nsource = \"procedural\"\n[train]\nsteps = 0\n").unwrap();
    let o = train(&p, &dir.path().join("r"), &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("train.steps"), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(&p, "[model]\nconfig = \"micro\"\n[data]\nsource = \"nonsense\"\n[attack]\nstyle = false\ndeform = false\n").unwrap();
    let o = train(&p, &dir.path().join("r2"), &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("data.source"), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(&p, "[model]\nconfig = \"micro\"\ninit = \"/nonexistent.pt\"\n[data]\nsource = \"procedural\"\n[attack]\nstyle = false\ndeform = false\n").unwrap();
    let o = train(&p, &dir.path().join("r3"), &[]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent.pt"), "{}", String::from_utf8_lossy(&o.stderr));
    // A CUDA device in a CPU-only build names the feature to build with.
    let ok = config(dir.path(), "ok", PLAIN, 1);
    let o = train(&ok, &dir.path().join("r4"), &["--device", "cuda:0"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && (cfg!(feature = "cuda") || err.contains("--features cuda")), "{err}");
    let o = train(&ok, &dir.path().join("r5"), &["--device", "tpu"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown device"), "{}", String::from_utf8_lossy(&o.stderr));
}

/// The committed trained models (docs/MODEL_CARD.md) load as exported and segment.
#[test]
fn committed_models_load_at_their_training_size() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (name, bayes) in [("sam2.1-micro-base", false), ("bayes-only-micro", true), ("ruac-micro", true)] {
        let ck = ruac_core::checkpoint::Checkpoint::load(root.join(format!("models/{name}.safetensors"))).unwrap();
        let cfg = ck.infer_config().unwrap();
        assert_eq!((cfg.image_size, cfg.bayes_head.is_some()), (256, bayes), "{name}");
        ck.build_model(Some(cfg), &candle_core::Device::Cpu).unwrap();
    }
}

/// RUAC on a SAM 1 base (issue #6): a tiny random SAM ViT whose configuration its checkpoint
/// names, with the Bayesian head, both attackers and the UAA loss from the first step, box
/// prompts. The head's loss falls; the export drops the attackers (whose memory-encoder
/// modules were fresh and trained: SAM 1 has none to copy), keeps the frozen encoder bit for
/// bit, and loads as a SAM 1 RUAC model.
#[test]
fn ruac_on_a_sam1_base_trains_and_exports_a_sam1_model() {
    let dir = tempfile::tempdir().unwrap();
    let init = sam1_fixture();
    let text = format!(
        r#"[model]
config = "sam1"
init = "{}"
bayes_head = true
freeze_image_encoder = true

[data]
source = "procedural"
max_objects = 1

[train]
steps = 30
grad_accum = 1
seed = 11
clip_grad_norm = 1.0
weight_decay = 0.0
checkpoint_every = 10
keep_checkpoints = 1

{SAM1_LR}
[loss.prompts]
correction_clicks = 0
prob_point = 0.0
prob_box_given_not_point = 1.0

[loss.seg]
obj_score = 0.0

[weights]
kl_from = 0.0
adv_from = 0.0

[attack]
style = true
deform = true
"#,
        init.display().to_string().replace('\\', "/")
    );
    let cfg = dir.path().join("sam1.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.path().join("run");
    let o = train(&cfg, &run, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let log: Vec<serde_json::Value> =
        std::fs::read_to_string(run.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for r in &log {
        assert!(r["adv_seg"].as_f64().unwrap() > 0.0 && r["cal"].as_f64().unwrap() > 0.0, "adversarial branch and UAA loss must run: {r}");
    }
    let seg: Vec<f64> = log.iter().map(|r| r["clean_seg"].as_f64().unwrap()).collect();
    let first: f64 = seg[..8].iter().sum::<f64>() / 8.0;
    let last: f64 = seg[seg.len() - 8..].iter().sum::<f64>() / 8.0;
    assert!(last < 0.9 * first, "clean segmentation loss did not fall: first {first:.3}, last {last:.3} ({seg:?})");
    let ck = std::fs::read(run.join("checkpoints/step_0000030.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&ck).unwrap();
    assert!(st.names().iter().any(|n| n.starts_with("param.memory_encoder.")), "the deformation attacker's modules");

    let out = dir.path().join("sam1-ruac.safetensors");
    let o = trainer().args(["export", "--checkpoint"]).arg(&run).arg("--out").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exported = ruac_core::checkpoint::Checkpoint::load(&out).unwrap();
    assert!(exported.is_sam1());
    let c = exported.infer_sam1_config().unwrap();
    assert!(c.decoder.bayes_head && c.name == "vit_tiny", "{c:?}");
    assert!(exported.tensors.keys().all(|n| !n.starts_with("style_") && !n.starts_with("deform_") && !n.starts_with("memory_encoder.")));
    let original = ruac_core::checkpoint::Checkpoint::load(&init).unwrap();
    let mut encoder = 0;
    for (name, t) in &original.tensors {
        if name.starts_with("image_encoder.") {
            let e = exported.tensors.get(name).unwrap_or_else(|| panic!("{name} missing from the export"));
            let d = (e - t).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(d, 0.0, "{name} changed although the encoder is frozen");
            encoder += 1;
        }
    }
    assert!(encoder > 10);
    exported.build_sam1(None, &candle_core::Device::Cpu).unwrap();
}

/// `model.head_init = "hypernetwork"`: the Bayesian head starts as the base's own
/// hypernetwork head (ridge fit, `head_init.rs`), so on LiteMedSAM's real weights (`make
/// weights`, or RUAC_LITE_MEDSAM) its masks agree with the base's almost everywhere before
/// any training step. (A random tiny model is no test of this: its logits hover around 0.)
#[test]
fn head_init_fits_the_bayesian_head_to_the_hypernetwork() {
    let dir = tempfile::tempdir().unwrap();
    let init = match std::env::var_os("RUAC_LITE_MEDSAM") {
        Some(p) => std::path::PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/weights/lite_medsam.pth"),
    };
    assert!(init.exists(), "{} missing: run `make weights` or set RUAC_LITE_MEDSAM", init.display());
    let text = format!(
        "[model]\nconfig = \"lite_medsam\"\ninit = \"{}\"\nbayes_head = true\nhead_init = \"hypernetwork\"\nhead_init_samples = 3\n\n\
         [data]\nsource = \"procedural\"\nmax_objects = 2\n\n[train]\nsteps = 1\ngrad_accum = 1\n\n\
         [loss.prompts]\ncorrection_clicks = 0\nprob_point = 0.0\nprob_box_given_not_point = 1.0\n\n\
         [attack]\nstyle = false\ndeform = false\n",
        init.display().to_string().replace('\\', "/")
    );
    let cfg = dir.path().join("hi.toml");
    std::fs::write(&cfg, text).unwrap();
    let o = train(&cfg, &dir.path().join("run"), &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let agreement: f64 = err
        .split("sign agreement ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no fit report in {err}"));
    assert!(agreement > 0.95, "the fitted head agrees with the base on only {agreement} of the pixels");
    // The first step's IoU is the base's, not a fresh head's (about 0.1-0.2).
    let log = std::fs::read_to_string(dir.path().join("run/log.jsonl")).unwrap();
    let r: serde_json::Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert!(r["iou_clean"].as_f64().unwrap() > 0.5, "{r}");
    // Without the Bayesian head there is nothing to fit: refused with the reason.
    std::fs::write(&cfg, std::fs::read_to_string(&cfg).unwrap().replace("bayes_head = true", "bayes_head = false")).unwrap();
    let o = train(&cfg, &dir.path().join("run2"), &[]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("head_init"));
}

/// `train.embed_cache` (frozen SAM 1 encoder, a dataset without augmentation) must not
/// change a number: a run that encodes every step, one that fills the cache and one that
/// reads it log the same losses, to the bit; `adv_every` runs the adversarial branch on
/// every second step only.
#[test]
fn cached_embeddings_give_the_run_of_an_uncached_one() {
    let dir = tempfile::tempdir().unwrap();
    let init = sam1_fixture();
    let data = dir.path().join("data");
    let o = trainer()
        .args(["gen-domain", "--domain", "train", "--count", "3", "--size", "96", "--seed", "5", "--out"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = |cache: &str| {
        format!(
            r#"[model]
config = "sam1"
init = "{}"
bayes_head = true
freeze_image_encoder = true

[data]
source = "mask_folder"
root = "{}"
max_objects = 2

[train]
steps = 6
grad_accum = 2
seed = 3
checkpoint_every = 3
keep_checkpoints = 2
{cache}

{SAM1_LR}
[loss.prompts]
correction_clicks = 2
prob_point = 0.5
prob_box_given_not_point = 1.0

[loss.seg]
obj_score = 0.0

[weights]
kl_from = 0.0
adv_from = 0.0
adv_every = 2
"#,
            init.display().to_string().replace('\\', "/"),
            data.display().to_string().replace('\\', "/")
        )
    };
    let plain = dir.path().join("plain.toml");
    std::fs::write(&plain, text("")).unwrap();
    let cached = dir.path().join("cached.toml");
    let cache_dir = dir.path().join("cache").display().to_string().replace('\\', "/");
    std::fs::write(&cached, text(&format!("embed_cache = \"{cache_dir}\""))).unwrap();
    let log = |run: &Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(run.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let fields = ["loss", "clean_seg", "kl", "adv_seg", "cal", "iou_clean", "iou_adv", "grad_norm"];
    let strip = |l: &[serde_json::Value]| -> Vec<Vec<f64>> {
        l.iter().map(|r| fields.iter().map(|f| r[*f].as_f64().unwrap()).collect()).collect()
    };
    let mut runs = vec![];
    for (name, cfg) in [("plain", &plain), ("fill", &cached), ("read", &cached)] {
        let run = dir.path().join(name);
        let o = train(cfg, &run, &[]);
        assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        runs.push(log(&run));
    }
    assert_eq!(strip(&runs[0]), strip(&runs[1]), "filling the cache changed the run");
    assert_eq!(strip(&runs[0]), strip(&runs[2]), "reading the cache changed the run");
    // Every sample of the third run came from the cache; the adversarial branch ran on even steps only.
    assert!(runs[2].iter().all(|r| r["cache_hits"].as_u64() == Some(2)), "{:?}", runs[2]);
    for r in &runs[0] {
        let even = r["step"].as_u64().unwrap() % 2 == 0;
        assert_eq!(r["adv_seg"].as_f64().unwrap() > 0.0, even, "adv_every = 2: {r}");
    }
    // A cache made for other data is refused with the reason.
    let other = dir.path().join("other.toml");
    let data_str = data.display().to_string().replace('\\', "/");
    let moved = text(&format!("embed_cache = \"{cache_dir}\"")).replace(&format!("root = \"{data_str}\""), &format!("root = \"{data_str}/.\""));
    std::fs::write(&other, moved).unwrap();
    let o = train(&other, &dir.path().join("other"), &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("train.embed_cache") && err.contains("use another folder"), "{err}");
}
