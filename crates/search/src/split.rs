//! The search split across machines (`sop quantize --shard K/N`): each pass runs per shard
//! of the work, and merge steps join the shards' small files, so that a batch system a user
//! already has (a Slurm job array, a CI matrix) runs a large model on many machines. The
//! merged result is byte-identical to [`crate::run`] on one machine.
//!
//! 1. [`evaluate_shard`] (pass 1, shard `K/N`): the layers [`sop_shard::Shard::indices`]
//!    gives shard `K` (balanced by weights, as `sop cosim --shard`), evaluated as
//!    [`crate::evaluate`] does; writes a *pass-1 table*: per layer, the exact bits and the
//!    error metrics of every option (what the knapsack needs), and the layer's digest.
//! 2. [`plan_from_pass1`]: checks that the `N` tables are of this run and that each shard
//!    is there once, joins them, solves the knapsack ([`crate::choose`]) and writes the
//!    *plan*: the whole evaluation and the chosen option per layer.
//! 3. [`write_shard`] (pass 2, shard `K/N`): the output's model files (the layout of
//!    [`crate::file_plan`]: one file, or shards) are shared out balanced by weights; shard
//!    `K` quantizes the layers of its files, writes those files under their final names and
//!    a *pass-2 manifest* (the files' index entries and each layer's report figures).
//! 4. [`finish`]: checks the `N` manifests and the files they list, writes the index (when
//!    the model is sharded) and `report.json` / `report.md`.
//!
//! Every stage takes the same [`crate::Spec`] (the same command-line arguments) and checks
//! that each file it reads was made for the same run ([`RunId`]: model path, layers and
//! shapes, calibration, menu, quantizer options, target, sensitivity, sampling, hardware,
//! shard size): files of another model, target or menu, a missing shard or a shard given
//! twice are errors naming the file. Pass 2 also checks each layer's [`crate::layer_digest`]
//! against pass 1's, so a model or calibration that differs between machines is caught where
//! one layer is evaluated on one machine and written on another.
//!
//! The floating-point figures travel as their IEEE-754 bit patterns (exact, and infinities
//! and NaN survive), so the joined results are the very values one machine computes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sop_quantize::Metrics;
use sop_shard::Shard;

use crate::{
    choose, evaluate_layers, file_extra, file_plan, finish_report, quantize_chosen, sensitivities, Chosen, Evaluation,
    LayerEval, Observer, OptionEval, Outcome, Pass, Plan, Probe, Spec,
};
use crate::{ensure_input, input, io, Result};

/// `format` of a pass-1 table.
pub const PASS1_FORMAT: &str = "sop-quantize-pass1/1";
/// `format` of a plan.
pub const PLAN_FORMAT: &str = "sop-quantize-plan/1";
/// `format` of a pass-2 manifest.
pub const PASS2_FORMAT: &str = "sop-quantize-pass2/1";

/// What defines a run: every input that changes a byte of its output. Each file of a split
/// run records it; a file whose `RunId` differs from the reader's is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunId {
    /// The model path as given (recorded in the output).
    pub model: String,
    /// The linear layers of the run, in order, with their shapes (outermost first).
    pub layers: Vec<(String, Vec<usize>)>,
    /// Where the column weights come from ([`Spec::calibration`]).
    pub calibration: String,
    /// The menu, in order.
    pub menu: Vec<String>,
    /// The quantizer options ([`sop_quantize::QuantOptions`], debug form).
    pub quantizer_options: String,
    /// The target in bits per weight, as the output records it.
    pub target_bpw: String,
    /// [`crate::Sensitivity::as_str`].
    pub sensitivity: String,
    /// Calibration sentences of measured sensitivities (encoders).
    pub sensitivity_sentences: usize,
    /// Calibration tokens of measured sensitivities (decoders).
    pub sensitivity_tokens: usize,
    /// [`Spec::sample_weights`].
    pub sample_weights: usize,
    /// [`Spec::check_embeddings`].
    pub check_embeddings: bool,
    /// [`Spec::hardware`].
    pub hardware: String,
    /// [`Spec::max_shard_bytes`].
    pub max_shard_bytes: u64,
}

impl RunId {
    /// The identity of the run `spec` describes. Layers the model does not have get an empty
    /// shape (pass 1 then fails naming them).
    pub fn of(spec: &Spec<'_>) -> RunId {
        RunId {
            model: spec.model_path.display().to_string(),
            layers: spec
                .layers
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        spec.model.tensor(n).map(|t| t.shape.clone()).unwrap_or_default(),
                    )
                })
                .collect(),
            calibration: spec.calibration.clone(),
            menu: spec.menu.iter().map(ToString::to_string).collect(),
            quantizer_options: format!("{:?}", spec.options),
            target_bpw: spec.target_bpw.to_string(),
            sensitivity: spec.sensitivity.as_str().to_string(),
            sensitivity_sentences: spec.sensitivity_sentences,
            sensitivity_tokens: spec.sensitivity_tokens,
            sample_weights: spec.sample_weights,
            check_embeddings: spec.check_embeddings,
            hardware: spec.hardware.clone(),
            max_shard_bytes: spec.max_shard_bytes,
        }
    }

    /// The weights of each layer (its balancing weight).
    pub fn layer_weights(&self) -> Vec<u64> {
        self.layers
            .iter()
            .map(|(_, s)| s.iter().map(|&d| d as u64).product())
            .collect()
    }

    /// `Ok` when `found` (read from `file`) is this run; else an error naming the first field
    /// that differs.
    fn check(&self, found: &RunId, file: &Path) -> Result<()> {
        if self == found {
            return Ok(());
        }
        let value = |r: &RunId| serde_json::to_value(r).map_err(|e| input!("run identity: {e}"));
        let (a, b) = (value(self)?, value(found)?);
        let field = a
            .as_object()
            .into_iter()
            .flatten()
            .find(|(k, v)| b.get(k.as_str()) != Some(v))
            .map(|(k, v)| {
                let short = |v: &serde_json::Value| {
                    let s = v.to_string();
                    if s.chars().count() > 120 {
                        format!("{}...", s.chars().take(117).collect::<String>())
                    } else {
                        s
                    }
                };
                format!(
                    "`{k}` is {} there, {} here",
                    short(b.get(k.as_str()).unwrap_or(&serde_json::Value::Null)),
                    short(v)
                )
            })
            .unwrap_or_else(|| "the runs differ".to_string());
        Err(input!(
            "{}: made by another run: {field} (every stage of a split run takes the same model, \
             layers, calibration, menu, target and options)",
            file.display()
        ))
    }
}

/// Metrics as the bit patterns of their eight fields (exact through JSON).
fn metrics_bits(m: &Metrics) -> [u64; 8] {
    [
        m.mse,
        m.nmse,
        m.sqnr_db,
        m.cosine,
        m.w_mse,
        m.w_nmse,
        m.w_sqnr_db,
        m.w_cosine,
    ]
    .map(f64::to_bits)
}

fn metrics_from(b: &[u64; 8]) -> Metrics {
    let f = b.map(f64::from_bits);
    Metrics {
        mse: f[0],
        nmse: f[1],
        sqnr_db: f[2],
        cosine: f[3],
        w_mse: f[4],
        w_nmse: f[5],
        w_sqnr_db: f[6],
        w_cosine: f[7],
    }
}

/// One option of one layer in a pass-1 table or a plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct OptionRecord {
    bits: u64,
    /// [`Metrics`] fields in declaration order, as f64 bit patterns.
    metrics: [u64; 8],
}

/// One layer of a pass-1 table or a plan ([`LayerEval`] with its index in the run).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LayerRecord {
    index: usize,
    name: String,
    rows: usize,
    cols: usize,
    calibrated: bool,
    /// f64 bit pattern.
    measured: Option<u64>,
    sampled_rows: Option<usize>,
    digest: u64,
    options: Vec<OptionRecord>,
}

impl LayerRecord {
    fn new(index: usize, l: &LayerEval) -> Self {
        LayerRecord {
            index,
            name: l.name.clone(),
            rows: l.rows,
            cols: l.cols,
            calibrated: l.calibrated,
            measured: l.measured.map(f64::to_bits),
            sampled_rows: l.sampled_rows,
            digest: l.digest,
            options: l
                .options
                .iter()
                .map(|o| OptionRecord {
                    bits: o.bits,
                    metrics: metrics_bits(&o.metrics),
                })
                .collect(),
        }
    }

    /// The layer, checked against the run (name, shape and option count).
    fn eval(&self, run: &RunId, file: &Path) -> Result<LayerEval> {
        let bad = |what: String| input!("{}: layer {} (`{}`): {what}", file.display(), self.index, self.name);
        let (name, shape) = run
            .layers
            .get(self.index)
            .ok_or_else(|| bad(format!("the run has {} layers", run.layers.len())))?;
        if *name != self.name || *shape != [self.rows, self.cols] {
            return Err(bad(format!(
                "the run's layer {} is `{name}` of shape {shape:?}",
                self.index
            )));
        }
        if self.options.len() != run.menu.len() {
            return Err(bad(format!(
                "{} options, the menu has {}",
                self.options.len(),
                run.menu.len()
            )));
        }
        Ok(LayerEval {
            name: self.name.clone(),
            rows: self.rows,
            cols: self.cols,
            calibrated: self.calibrated,
            options: self
                .options
                .iter()
                .map(|o| OptionEval {
                    bits: o.bits,
                    metrics: metrics_from(&o.metrics),
                })
                .collect(),
            measured: self.measured.map(f64::from_bits),
            sampled_rows: self.sampled_rows,
            digest: self.digest,
        })
    }
}

/// A pass-1 table: shard `shard` of pass 1.
#[derive(Serialize, Deserialize)]
struct Pass1File {
    format: String,
    run: RunId,
    shard: String,
    layers: Vec<LayerRecord>,
}

/// A plan: the whole evaluation and the knapsack's choice (menu index per layer).
#[derive(Serialize, Deserialize)]
struct PlanFile {
    format: String,
    run: RunId,
    layers: Vec<LayerRecord>,
    choice: Vec<usize>,
}

/// One layer written by a pass-2 shard ([`Chosen`] with its index in the run).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ChosenRecord {
    index: usize,
    option: usize,
    bits: u64,
    /// f64 bit pattern.
    bpw: u64,
    /// [`Metrics`] fields in declaration order, as f64 bit patterns.
    metrics: [u64; 8],
    outliers: usize,
    residuals: usize,
}

/// A pass-2 manifest: the model files shard `shard` wrote and its layers' figures.
#[derive(Serialize, Deserialize)]
struct Pass2File {
    format: String,
    run: RunId,
    shard: String,
    /// Index of each file in the output's layout, with its index entry.
    files: Vec<(usize, sop_qmodel::FileEntry)>,
    layers: Vec<ChosenRecord>,
}

/// Writes `value` as pretty JSON to `path`, whole or not at all.
fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io("creating", dir))?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| input!("{}: {e}", path.display()))? + "\n";
    sop_atomic_write::write(path, text.as_bytes())?;
    Ok(())
}

/// Reads a JSON file of `format` (`what` names it in errors).
fn read_json<T: DeserializeOwned>(path: &Path, what: &str, format: &str) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io(&format!("reading the {what}"), path))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| input!("{}: not a {what} (not JSON): {e}", path.display()))?;
    match v.get("format").and_then(|f| f.as_str()) {
        Some(f) if f == format => {}
        other => {
            return Err(input!(
                "{}: not a {what}: `format` is {other:?}, expected `{format}`",
                path.display()
            ))
        }
    }
    serde_json::from_value(v).map_err(|e| input!("{}: malformed {what}: {e}", path.display()))
}

/// The shards of `files` (each file's `shard` field): all of one count `N`, each `K` once,
/// none missing. Returns the files ordered by `K`.
fn check_shards<'a, T>(
    files: &'a [(PathBuf, T)],
    shard: impl Fn(&T) -> &str,
    what: &str,
) -> Result<Vec<(Shard, &'a (PathBuf, T))>> {
    ensure_input!(!files.is_empty(), "no {what} given");
    let mut by_k: BTreeMap<u32, (Shard, &(PathBuf, T))> = BTreeMap::new();
    let mut count: Option<(u32, &Path)> = None;
    for f in files {
        let s: Shard = shard(&f.1)
            .parse()
            .map_err(|e| input!("{}: shard {e}", f.0.display()))?;
        match count {
            None => count = Some((s.count, &f.0)),
            Some((n, first)) if n != s.count => {
                return Err(input!(
                    "{} is shard {s} but {} is of {n} shards: the {what}s come from runs split differently",
                    f.0.display(),
                    first.display()
                ))
            }
            Some(_) => {}
        }
        if let Some((_, (other, _))) = by_k.insert(s.index, (s, f)) {
            return Err(input!(
                "shard {s} given twice: {} and {} (a duplicated {what})",
                other.display(),
                f.0.display()
            ));
        }
    }
    let n = count.expect("non-empty").0;
    let missing: Vec<String> = (1..=n)
        .filter(|k| !by_k.contains_key(k))
        .map(|k| format!("{k}/{n}"))
        .collect();
    ensure_input!(
        missing.is_empty(),
        "missing {what} of shard {} ({} of {n} given)",
        missing.join(", "),
        by_k.len()
    );
    Ok(by_k.into_values().collect())
}

/// Pass 1 of shard `shard`: evaluates its layers and writes its pass-1 table to `table`.
/// Returns the number of layers evaluated (0 when the shard has none: more shards than
/// layers).
pub fn evaluate_shard(spec: &Spec<'_>, shard: Shard, table: &Path, obs: &mut dyn Observer) -> Result<usize> {
    let run = RunId::of(spec);
    let indices = shard.indices(&run.layer_weights());
    let layers = evaluate_layers(spec, &indices, obs)?;
    let file = Pass1File {
        format: PASS1_FORMAT.to_string(),
        run,
        shard: shard.to_string(),
        layers: indices
            .iter()
            .zip(&layers)
            .map(|(&i, l)| LayerRecord::new(i, l))
            .collect(),
    };
    write_json(table, &file)?;
    Ok(layers.len())
}

/// Joins the pass-1 tables `tables` (all `N` shards of this run, each once), solves the
/// knapsack and writes the plan to `plan_out`. Returns the evaluation and the plan.
pub fn plan_from_pass1(
    spec: &Spec<'_>,
    tables: &[PathBuf],
    plan_out: &Path,
    obs: &mut dyn Observer,
) -> Result<(Evaluation, Plan)> {
    check_target(spec)?;
    let run = RunId::of(spec);
    let read: Vec<(PathBuf, Pass1File)> = tables
        .iter()
        .map(|p| Ok((p.clone(), read_json::<Pass1File>(p, "pass-1 table", PASS1_FORMAT)?)))
        .collect::<Result<_>>()?;
    for (p, f) in &read {
        run.check(&f.run, p)?;
    }
    let weights = run.layer_weights();
    let mut layers: Vec<Option<LayerEval>> = vec![None; run.layers.len()];
    for (s, (p, f)) in check_shards(&read, |f| f.shard.as_str(), "pass-1 table")? {
        let want = s.indices(&weights);
        let got: Vec<usize> = f.layers.iter().map(|l| l.index).collect();
        ensure_input!(
            got == want,
            "{}: shard {s} holds layers {got:?}, but shard {s} of this run is layers {want:?}",
            p.display()
        );
        for l in &f.layers {
            layers[l.index] = Some(l.eval(&run, p)?);
        }
    }
    let eval = Evaluation {
        layers: layers.into_iter().map(|l| l.expect("every shard checked")).collect(),
    };
    let plan = choose(&eval, &sensitivities(&eval, spec.sensitivity)?, spec.target_bpw, obs)?;
    let file = PlanFile {
        format: PLAN_FORMAT.to_string(),
        run,
        layers: eval
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerRecord::new(i, l))
            .collect(),
        choice: plan.choice.clone(),
    };
    write_json(plan_out, &file)?;
    Ok((eval, plan))
}

fn check_target(spec: &Spec<'_>) -> Result<()> {
    ensure_input!(
        spec.target_bpw.is_finite() && spec.target_bpw > 0.0,
        "--target-bpw {}: must be a positive number",
        spec.target_bpw
    );
    Ok(())
}

/// Reads a plan of this run; the knapsack is solved again (it is deterministic) and must
/// choose what the plan records.
fn read_plan(spec: &Spec<'_>, path: &Path, obs: &mut dyn Observer) -> Result<(RunId, Evaluation, Plan)> {
    check_target(spec)?;
    let run = RunId::of(spec);
    let f: PlanFile = read_json(path, "plan", PLAN_FORMAT)?;
    run.check(&f.run, path)?;
    ensure_input!(
        f.layers.len() == run.layers.len() && f.layers.iter().enumerate().all(|(i, l)| l.index == i),
        "{}: the plan holds {} layers, not the run's {} in order",
        path.display(),
        f.layers.len(),
        run.layers.len()
    );
    let eval = Evaluation {
        layers: f.layers.iter().map(|l| l.eval(&run, path)).collect::<Result<_>>()?,
    };
    let plan = choose(&eval, &sensitivities(&eval, spec.sensitivity)?, spec.target_bpw, obs)?;
    ensure_input!(
        plan.choice == f.choice,
        "{}: the recorded choice differs from the knapsack's on the recorded evaluation (the plan was edited)",
        path.display()
    );
    Ok((run, eval, plan))
}

/// The output's model files: per file, its layers (a range of layer indices).
fn file_layers(spec: &Spec<'_>, eval: &Evaluation, plan: &Plan) -> Vec<std::ops::Range<usize>> {
    let mut start = 0;
    file_plan(spec, eval, plan)
        .into_iter()
        .map(|n| {
            start += n;
            start - n..start
        })
        .collect()
}

/// The model files (indices into [`file_layers`]) pass-2 shard `shard` writes: the files
/// shared out balanced by their weights.
fn files_of(shard: Shard, eval: &Evaluation, files: &[std::ops::Range<usize>]) -> Vec<usize> {
    let weights: Vec<u64> = files
        .iter()
        .map(|r| eval.layers[r.clone()].iter().map(LayerEval::weights).sum())
        .collect();
    shard.indices(&weights)
}

/// Pass 2 of shard `shard`: quantizes the layers of its share of the output's model files
/// with the options `plan` chose, writes those files into `out` (created if needed; other
/// shards write theirs there or elsewhere) and the pass-2 manifest to `manifest`. Returns the
/// files written (none when the shard has no file: more shards than files).
pub fn write_shard(
    spec: &Spec<'_>,
    plan: &Path,
    shard: Shard,
    out: &Path,
    manifest: &Path,
    obs: &mut dyn Observer,
) -> Result<Vec<PathBuf>> {
    let (run, eval, plan) = read_plan(spec, plan, obs)?;
    let files = file_layers(spec, &eval, &plan);
    let mine = files_of(shard, &eval, &files);
    std::fs::create_dir_all(out).map_err(io("--out", out))?;
    let extra = file_extra(spec);
    let mut written = Vec::new();
    let mut entries = Vec::new();
    let mut layers = Vec::new();
    obs.pass_start(Pass::Write, mine.iter().map(|&f| files[f].len()).sum());
    for &f in &mine {
        let mut w = sop_qmodel::ShardWriter::create(out, &sop_qmodel::layout_file_name(f, files.len()))?;
        for i in files[f].clone() {
            let k = plan.choice[i];
            let (ql, c) = quantize_chosen(spec, &eval.layers[i], k, obs)?;
            w.push(&ql, &spec.menu[k])?;
            layers.push(ChosenRecord {
                index: i,
                option: c.option,
                bits: c.bits,
                bpw: c.bpw.to_bits(),
                metrics: metrics_bits(&c.metrics),
                outliers: c.outliers,
                residuals: c.residuals,
            });
            obs.layer_done(Pass::Write);
        }
        let (path, entry) = w.finish_entry(&extra)?;
        written.push(path);
        entries.push((f, entry));
    }
    obs.pass_done(Pass::Write);
    let m = Pass2File {
        format: PASS2_FORMAT.to_string(),
        run,
        shard: shard.to_string(),
        files: entries,
        layers,
    };
    write_json(manifest, &m)?;
    Ok(written)
}

/// The last step: checks the pass-2 manifests `manifests` (all `N` shards of this run, each
/// once) and that every model file they list is in `out` with the size its shard wrote,
/// writes the index (sharded models) and `report.json` / `report.md` into `out`. The
/// directory then equals [`crate::run`]'s byte for byte. Returns the outcome and the plan.
pub fn finish(
    spec: &Spec<'_>,
    plan: &Path,
    manifests: &[PathBuf],
    out: &Path,
    obs: &mut dyn Observer,
) -> Result<(Outcome, Plan)> {
    let (run, eval, plan) = read_plan(spec, plan, obs)?;
    let files = file_layers(spec, &eval, &plan);
    let read: Vec<(PathBuf, Pass2File)> = manifests
        .iter()
        .map(|p| Ok((p.clone(), read_json::<Pass2File>(p, "pass-2 manifest", PASS2_FORMAT)?)))
        .collect::<Result<_>>()?;
    for (p, f) in &read {
        run.check(&f.run, p)?;
    }
    let mut entries: Vec<Option<sop_qmodel::FileEntry>> = vec![None; files.len()];
    let mut chosen: Vec<Option<Chosen>> = vec![None; eval.layers.len()];
    for (s, (p, f)) in check_shards(&read, |f| f.shard.as_str(), "pass-2 manifest")? {
        let want = files_of(s, &eval, &files);
        let got: Vec<usize> = f.files.iter().map(|e| e.0).collect();
        ensure_input!(
            got == want,
            "{}: shard {s} wrote model files {got:?}, but shard {s} of this plan writes {want:?}",
            p.display()
        );
        let want_layers: Vec<usize> = want.iter().flat_map(|&k| files[k].clone()).collect();
        let got_layers: Vec<usize> = f.layers.iter().map(|l| l.index).collect();
        ensure_input!(
            got_layers == want_layers,
            "{}: shard {s} wrote layers {got_layers:?}, its files hold {want_layers:?}",
            p.display()
        );
        for (k, e) in &f.files {
            let name = sop_qmodel::layout_file_name(*k, files.len());
            ensure_input!(
                e.name == name,
                "{}: file {k} is `{}`, expected `{name}`",
                p.display(),
                e.name
            );
            let path = out.join(&e.name);
            let len = std::fs::metadata(&path)
                .map_err(|e| {
                    input!(
                        "{}: missing ({e}): pass-2 shard {s} ({}) wrote it; copy it into {} or run that shard again",
                        path.display(),
                        p.display(),
                        out.display()
                    )
                })?
                .len();
            ensure_input!(
                len == e.file_bytes,
                "{}: {len} bytes, but pass-2 shard {s} ({}) wrote {} bytes: a different or damaged file",
                path.display(),
                p.display(),
                e.file_bytes
            );
            entries[*k] = Some(e.clone());
        }
        for l in &f.layers {
            ensure_input!(
                l.option == plan.choice[l.index],
                "{}: layer {} written with option {}, the plan chose {}",
                p.display(),
                l.index,
                l.option,
                plan.choice[l.index]
            );
            chosen[l.index] = Some(Chosen {
                option: l.option,
                bits: l.bits,
                bpw: f64::from_bits(l.bpw),
                metrics: metrics_from(&l.metrics),
                outliers: l.outliers,
                residuals: l.residuals,
            });
        }
    }
    let entries: Vec<sop_qmodel::FileEntry> = entries.into_iter().map(|e| e.expect("checked")).collect();
    let chosen: Vec<Chosen> = chosen.into_iter().map(|c| c.expect("checked")).collect();
    let extra = file_extra(spec);
    let mut written: Vec<PathBuf> = entries.iter().map(|e| out.join(&e.name)).collect();
    if let Some(index) = sop_qmodel::finish_layout(out, &entries, &extra)? {
        written.push(index);
    }
    let embedding_cosine = if spec.check_embeddings {
        let mut p = Probe::bert(spec.model_path, None)?;
        for (ql, _) in sop_qmodel::read(out)?.layers {
            p.set_bert_weight(&ql.name, &ql.dequantize())?;
        }
        Some(p.bert_cosine()?)
    } else {
        None
    };
    let outcome = finish_report(spec, &eval, &plan, &chosen, embedding_cosine, written, out)?;
    Ok((outcome, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_survive_json_exactly() {
        let m = Metrics {
            mse: 1.0 / 3.0,
            nmse: f64::INFINITY,
            sqnr_db: f64::NEG_INFINITY,
            cosine: f64::NAN,
            w_mse: 5e-324,
            w_nmse: 0.1 + 0.2,
            w_sqnr_db: -0.0,
            w_cosine: 0.999_999_999_999_999_9,
        };
        let text = serde_json::to_string(&OptionRecord {
            bits: 7,
            metrics: metrics_bits(&m),
        })
        .unwrap();
        let back: OptionRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.metrics, metrics_bits(&m));
        assert_eq!(metrics_bits(&metrics_from(&back.metrics)), metrics_bits(&m));
    }

    fn files(shards: &[&str]) -> Vec<(PathBuf, String)> {
        shards
            .iter()
            .enumerate()
            .map(|(i, s)| (PathBuf::from(format!("f{i}.json")), s.to_string()))
            .collect()
    }

    #[test]
    fn every_shard_once_of_one_count() {
        let ok = files(&["2/3", "1/3", "3/3"]);
        let order: Vec<String> = check_shards(&ok, |s| s.as_str(), "table")
            .unwrap()
            .iter()
            .map(|(s, _)| s.to_string())
            .collect();
        assert_eq!(order, ["1/3", "2/3", "3/3"]);
        let err = |shards: &[&str]| {
            check_shards(&files(shards), |s| s.as_str(), "table")
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["1/3", "3/3"]).contains("missing table of shard 2/3"));
        assert!(err(&["1/2", "1/2", "2/2"]).contains("shard 1/2 given twice: f0.json and f1.json"));
        assert!(err(&["1/2", "2/3"]).contains("split differently"));
        assert!(err(&["x"]).contains("f0.json: shard"));
        assert!(err(&[]).contains("no table given"));
    }
}
