//! Functional coverage of the co-simulation (`sop cosim --coverage FILE`): the bins a
//! verification engineer would write for a decode lane, which of them any input can reach,
//! the hits the harness collected, their merge across work items, threads and shards, and
//! the JSON report.
//!
//! Per configuration and per element path (a fixed lane has one, `lane`; an engine one per
//! mode, e.g. `mode_LUT_c4_SE4M3`), with the classes of [`sop_hw::coverage`]:
//!
//! | coverpoint | bins |
//! |---|---|
//! | `scale` | block-scale code class: zero, subnormal, each normal exponent, max (E4M3: the NaN code taken as given) |
//! | `scale_sign` (E4M3, SE4M3) | sign bit x scale class: negative for SE4M3, ignored for unsigned E4M3 |
//! | `element` | the table entry (HIF: zero, each exponent x mantissa; FP16: zero, subnormal, normal, max, Inf/NaN) or the direct path's minifloat code class |
//! | `pack` | packer outcome: exact, round down/up, tie to even down/up, the same under underflow, underflow to zero, overflow to max, overflow to infinity |
//! | `element_x_pack`, `scale_x_pack`, `sign_x_pack` | the crosses with the packer outcome (sign: of the output word) |
//! | `sel_x_pack` (LUT paths) | selection bit x packer outcome |
//!
//! and per configuration the stream events (`event/...`: block strobe with and without
//! `valid_in`, idle cycles inside a stream, a reset with weights in flight, a reset
//! mid-block, a table load while words drain, a block continued across a table load; on
//! engines an outlier and a residual correction).
//!
//! **Reachability is computed, not asserted**: for every path the whole input domain
//! (every LUT word x every bias of the golden model's domain x every scale code; or every
//! direct code x every scale code) is classified by the golden model's own
//! [`sop_hw::coverage::classify_value`]; a bin no input reaches is excluded, with the
//! reason of the first rule of [`exclusion_reason`] that explains it, or else the statement
//! that the enumeration of the domain never produced it. Every event bin is reachable.
//! [`directed`](crate::directed) turns the first input of every reachable class into
//! stimulus, so a run with the directed items reaches every reachable bin.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use serde_json::{json, Value};
use sop_formats::point::{LutEntry, ScaleFormat};
use sop_formats::{Ieee16, MiniFloat};
use sop_hw::coverage::{
    classify_value, lut_class, lut_classes, mag_class, mag_classes, scale_significant_bits, significant_bits,
    ElementClass, MagClass, PackOutcome, ScaleSign, WordClass,
};
use sop_hw::mode::{all_modes, ElementPath, Mode};
use sop_hw::model::{entry_value, BIAS_MAX, BIAS_MIN};
use sop_hw::params::scale_format;
use sop_hw::LaneConfig;

use crate::CosimError;

/// A stream event the harness records ([`Collected::events`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// A `block_start` with a weight (`valid_in` high).
    StrobeValid,
    /// A `block_start` without a weight (early strobe in an idle cycle).
    StrobeIdle,
    /// A lane cycle with neither weight nor strobe while a stream plays (gap or bubble).
    IdleGap,
    /// A reset with weights in flight (their outputs are lost).
    ResetInFlight,
    /// A reset while a lane is inside a block (a weight issued since its strobe).
    ResetMidBlock,
    /// A table load that starts while output words are still in flight.
    LoadDraining,
    /// A weight continuing its block without a strobe after a table load (the latched
    /// selection bit and scale survive the load).
    ReloadMidBlock,
    /// A word with an outlier correction (engines).
    CorrOutlier,
    /// A word with a residual correction (engines).
    CorrResidual,
}

impl Event {
    /// Every event, in report order.
    pub const ALL: [Event; 9] = [
        Event::StrobeValid,
        Event::StrobeIdle,
        Event::IdleGap,
        Event::ResetInFlight,
        Event::ResetMidBlock,
        Event::LoadDraining,
        Event::ReloadMidBlock,
        Event::CorrOutlier,
        Event::CorrResidual,
    ];

    /// Bin name.
    pub const fn name(self) -> &'static str {
        match self {
            Event::StrobeValid => "block_strobe_with_valid",
            Event::StrobeIdle => "block_strobe_without_valid",
            Event::IdleGap => "idle_gap",
            Event::ResetInFlight => "reset_with_words_in_flight",
            Event::ResetMidBlock => "reset_mid_block",
            Event::LoadDraining => "table_load_while_draining",
            Event::ReloadMidBlock => "block_continued_across_table_load",
            Event::CorrOutlier => "sparse_outlier",
            Event::CorrResidual => "sparse_residual",
        }
    }

    /// Whether the event exists on `cfg` (corrections need an engine's correction unit).
    pub fn applies(self, cfg: &LaneConfig) -> bool {
        cfg.engine || !matches!(self, Event::CorrOutlier | Event::CorrResidual)
    }
}

/// What one harness collected: per element path (`None`: a fixed lane; `Some(mode word)`:
/// an engine mode), word class and selection bit, the words checked; and the events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Checked words by `(path, class, sel)`.
    pub words: BTreeMap<(Option<u8>, WordClass, bool), u64>,
    /// Event counts.
    pub events: BTreeMap<Event, u64>,
}

impl Collected {
    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &Collected) {
        for (k, v) in &o.words {
            *self.words.entry(*k).or_default() += v;
        }
        for (k, v) in &o.events {
            *self.events.entry(*k).or_default() += v;
        }
    }

    /// Counts one event.
    pub fn event(&mut self, e: Event) {
        *self.events.entry(e).or_default() += 1;
    }
}

/// The hits of a run (or a merge of runs): per configuration, what its items collected,
/// and the items (`config/layer`) that contributed. Sums are order-independent, so any
/// split over threads or shards gives the same result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Per configuration name.
    pub configs: BTreeMap<String, Collected>,
    /// The items merged in, as `config/layer`.
    pub items: BTreeSet<String>,
}

impl Coverage {
    /// Adds item `layer` on configuration `config` with what it collected.
    pub fn add_item(&mut self, config: &str, layer: &str, c: &Collected) {
        self.configs.entry(config.to_string()).or_default().add(c);
        self.items.insert(format!("{config}/{layer}"));
    }
}

/// The element path name of an engine mode in bin names.
pub fn mode_path_name(m: &Mode) -> String {
    format!("mode_{}_c{}_{}", m.element.name(), m.code_bits, m.scale.name())
}

/// One element path of a configuration: what decodes the elements and with which scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathKey {
    /// The LUT entry format (LUT paths) or the direct minifloat (engines' direct paths).
    pub source: Source,
    /// Block-scale format.
    pub scale: ScaleFormat,
    /// Output word format.
    pub output: Ieee16,
}

/// Where an element's value comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// A table word of this format (with the table's bias for HIF).
    Lut(LutEntry),
    /// An engine's direct minifloat path over codes `0 .. 2^bits` (the mode's code width
    /// masks a 6-bit minifloat's codes to 4 bits in a 4-bit mode).
    Direct(ElementPath, u32),
}

impl PathKey {
    /// The paths of `cfg` with their names in bin names: `lane` for a fixed lane, every
    /// mode for an engine.
    pub fn of(cfg: &LaneConfig) -> Vec<(Option<u8>, String, PathKey)> {
        if !cfg.engine {
            return vec![(
                None,
                "lane".into(),
                PathKey {
                    source: Source::Lut(cfg.lut),
                    scale: cfg.scale,
                    output: cfg.output,
                },
            )];
        }
        all_modes()
            .into_iter()
            .map(|m| {
                let source = match m.element.minifloat() {
                    None => Source::Lut(cfg.lut),
                    Some(mf) => Source::Direct(m.element, mf.bits().min(m.code_bits)),
                };
                (
                    Some(m.word()),
                    mode_path_name(&m),
                    PathKey {
                        source,
                        scale: m.scale,
                        output: cfg.output,
                    },
                )
            })
            .collect()
    }

    fn direct_mf(&self) -> Option<MiniFloat> {
        match self.source {
            Source::Direct(p, _) => p.minifloat(),
            Source::Lut(_) => None,
        }
    }

    /// Every element class of the path.
    pub fn element_classes(&self) -> Vec<ElementClass> {
        match self.source {
            Source::Lut(l) => lut_classes(l),
            Source::Direct(p, _) => {
                let mf = p.minifloat().expect("a direct path has a minifloat");
                mag_classes(&mf).into_iter().map(ElementClass::Direct).collect()
            }
        }
    }

    /// Whether the selection bit picks a table on this path.
    pub fn has_sel(&self) -> bool {
        matches!(self.source, Source::Lut(_))
    }

    /// The input domain, in words, for reports.
    pub fn domain(&self) -> String {
        match self.source {
            Source::Lut(l) => match l.hif() {
                Some(h) => format!(
                    "every {} word x every bias {BIAS_MIN}..={BIAS_MAX} x every {} scale code",
                    h.name(),
                    self.scale.name()
                ),
                None => format!("every FP16 word x every {} scale code", self.scale.name()),
            },
            Source::Direct(p, bits) => format!(
                "every {} code below 2^{bits} x every {} scale code",
                p.name(),
                self.scale.name()
            ),
        }
    }
}

/// One input that produces a word class: the element (LUT word, or direct code), the
/// table bias (HIF; else 0) and the scale code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Witness {
    /// LUT word or direct code.
    pub element: u32,
    /// Table bias (HIF tables).
    pub bias: i32,
    /// Block-scale code.
    pub scale: u8,
}

/// Every word class a path's domain produces, each with its first input in enumeration
/// order (element, then bias, then scale code), and the number of inputs enumerated.
#[derive(Clone, Debug)]
pub struct Reach {
    /// Class -> first witness.
    pub classes: BTreeMap<WordClass, Witness>,
    /// Inputs enumerated.
    pub inputs: u64,
}

/// The reachable classes of `key` (computed once per process and key).
pub fn reach(key: PathKey) -> Arc<Reach> {
    static CACHE: OnceLock<Mutex<HashMap<PathKey, Arc<Reach>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().expect("coverage cache").get(&key) {
        return r.clone();
    }
    let r = Arc::new(enumerate(key));
    cache.lock().expect("coverage cache").insert(key, r.clone());
    r
}

/// Classifies the whole domain of `key`.
fn enumerate(key: PathKey) -> Reach {
    // (element word, biases) in enumeration order.
    let elements: Vec<(u32, Vec<i32>)> = match key.source {
        Source::Lut(l) => {
            let n = 1u32 << l.bits();
            (0..n)
                .map(|w| {
                    // A zero HIF word is zero at any bias: one bias stands for all.
                    let biases = match l.hif() {
                        Some(h) if !h.is_zero(w) => (BIAS_MIN..=BIAS_MAX).collect(),
                        _ => vec![0],
                    };
                    (w, biases)
                })
                .collect()
        }
        Source::Direct(_, bits) => (0..1u32 << bits).map(|c| (c, vec![0])).collect(),
    };
    let mf = key.direct_mf();
    let per: Vec<(BTreeMap<WordClass, Witness>, u64)> = elements
        .par_iter()
        .map(|(w, biases)| {
            let mut m: BTreeMap<WordClass, Witness> = BTreeMap::new();
            let mut n = 0u64;
            for &bias in biases {
                let (class, value) = match (key.source, &mf) {
                    (Source::Lut(l), _) => (lut_class(l, *w), entry_value(l, *w, bias)),
                    (Source::Direct(..), Some(mf)) => (
                        ElementClass::Direct(mag_class(mf, *w & ((1 << mf.bits()) - 1))),
                        Ok(f64::from(mf.decode(*w & ((1 << mf.bits()) - 1)))),
                    ),
                    (Source::Direct(..), None) => unreachable!("a direct path has a minifloat"),
                };
                for scale in 0..=255u8 {
                    let (_, wc) = classify_value(key.output, class, value, key.scale, scale);
                    m.entry(wc).or_insert(Witness {
                        element: *w,
                        bias,
                        scale,
                    });
                    n += 1;
                }
            }
            (m, n)
        })
        .collect();
    let mut classes = BTreeMap::new();
    let mut inputs = 0;
    // In element order: the first witness of a class is the earliest input.
    for (m, n) in per {
        inputs += n;
        for (k, v) in m {
            classes.entry(k).or_insert(v);
        }
    }
    Reach { classes, inputs }
}

/// The bins of one word on a path: `(coverpoint, bin)` names (without the configuration
/// and path prefix).
fn word_bins(key: &PathKey, wc: &WordClass, sel: bool) -> Vec<(&'static str, String)> {
    let o = wc.outcome.name();
    let mag = wc.scale.mag;
    let mut v = vec![
        ("scale", mag.to_string()),
        ("element", wc.element.to_string()),
        ("pack", o.to_string()),
        ("element_x_pack", format!("{}.{o}", wc.element)),
        ("scale_x_pack", format!("{mag}.{o}")),
        (
            "sign_x_pack",
            format!("{}.{o}", if wc.negative { "negative" } else { "positive" }),
        ),
    ];
    if key.scale != ScaleFormat::UE4M4 {
        v.push(("scale_sign", format!("{}.{mag}", wc.scale.sign.name())));
    }
    if key.has_sel() {
        v.push(("sel_x_pack", format!("{}.{o}", u8::from(sel))));
    }
    v
}

/// Every bin of a path, `(coverpoint, bin)`, in report order.
fn path_bins(key: &PathKey) -> Vec<(&'static str, String)> {
    let (mf, _) = scale_format(key.scale);
    let mags = mag_classes(&mf);
    let elements = key.element_classes();
    let outs = PackOutcome::ALL;
    let mut v: Vec<(&'static str, String)> = Vec::new();
    v.extend(mags.iter().map(|m| ("scale", m.to_string())));
    if key.scale != ScaleFormat::UE4M4 {
        let other = if key.scale == ScaleFormat::SE4M3 {
            ScaleSign::Negative
        } else {
            ScaleSign::Ignored
        };
        for s in [ScaleSign::Positive, other] {
            v.extend(mags.iter().map(|m| ("scale_sign", format!("{}.{m}", s.name()))));
        }
    }
    v.extend(elements.iter().map(|e| ("element", e.to_string())));
    v.extend(outs.iter().map(|o| ("pack", o.name().to_string())));
    for e in &elements {
        v.extend(outs.iter().map(|o| ("element_x_pack", format!("{e}.{}", o.name()))));
    }
    for m in &mags {
        v.extend(outs.iter().map(|o| ("scale_x_pack", format!("{m}.{}", o.name()))));
    }
    for s in ["positive", "negative"] {
        v.extend(outs.iter().map(|o| ("sign_x_pack", format!("{s}.{}", o.name()))));
    }
    if key.has_sel() {
        for s in 0..2 {
            v.extend(outs.iter().map(|o| ("sel_x_pack", format!("{s}.{}", o.name()))));
        }
    }
    v
}

/// Why a bin no input reaches is unreachable: the first rule that explains it, or the
/// exhaustive enumeration's verdict. `point` is the coverpoint, `bin` the bin name.
pub fn exclusion_reason(key: &PathKey, point: &str, bin: &str, reach: &Reach) -> String {
    let outcome = PackOutcome::ALL
        .iter()
        .copied()
        .find(|o| bin == o.name() || bin.ends_with(&format!(".{}", o.name())));
    let head = bin.split('.').next().unwrap_or(bin);
    let out = key.output.name();
    let p = key.output.man_bits() + 1;
    let a = significant_bits(
        match key.source {
            Source::Lut(l) => l,
            Source::Direct(..) => LutEntry::Fp16,
        },
        key.direct_mf().as_ref(),
    );
    let b = scale_significant_bits(key.scale);
    let elem_what = match key.source {
        Source::Lut(l) => format!("{} entries", l.name()),
        Source::Direct(e, _) => format!("{} codes", e.name()),
    };
    if outcome == Some(PackOutcome::OverflowInf) {
        return format!("the packer saturates: an overflowing product gives the largest finite {out} word, never infinity (docs/spec.md)");
    }
    let zero_elem = point == "element_x_pack" && head == "zero";
    let zero_scale = point == "scale_x_pack" && head == "zero";
    if (zero_elem || zero_scale) && outcome.is_some_and(|o| o != PackOutcome::Zero) {
        return format!(
            "a zero {} gives an exact +0 whatever the other factor",
            if zero_elem { "element" } else { "scale" }
        );
    }
    if point == "element_x_pack"
        && head == "inf_nan"
        && !matches!(outcome, Some(PackOutcome::Zero | PackOutcome::OverflowMax))
    {
        return "an FP16 Inf/NaN entry takes the lane's overflow path: the largest finite word, or +0 with a zero scale".into();
    }
    if outcome == Some(PackOutcome::Zero) && point == "sign_x_pack" && head == "negative" {
        return "an exact zero product is packed as +0".into();
    }
    if let Some(o) = outcome {
        if o.rounds_normal() && a + b <= p {
            return format!(
                "{elem_what} have at most {a} significant bits and {} scales {b}: a normal product has at most {} <= {p}, the {out} precision, and never rounds",
                key.scale.name(),
                a + b
            );
        }
        if matches!(o, PackOutcome::Down | PackOutcome::Up) && a + b == p + 1 {
            return format!(
                "{elem_what} have at most {a} significant bits and {} scales {b}: a normal product has at most one bit more than the {out} precision ({p}), so a rounded one drops exactly half an ulp (a tie)",
                key.scale.name()
            );
        }
    }
    if point == "scale" || point == "scale_sign" || point == "element" {
        return format!("no code of this class exists on this path ({})", key.domain());
    }
    format!(
        "no input produces it: the whole domain ({}, {} inputs) was classified by the golden model",
        key.domain(),
        reach.inputs
    )
}

/// One bin of the coverage model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bin {
    /// Full name: `<config>/<path>/<coverpoint>/<bin>` or `<config>/event/<event>`.
    pub name: String,
    /// `None`: reachable; `Some(reason)`: excluded.
    pub excluded: Option<String>,
}

/// The coverage model of a set of configurations: every bin, reachable or excluded.
#[derive(Clone, Debug)]
pub struct CoverageModel {
    /// The configurations, in run order.
    pub configs: Vec<String>,
    /// Every bin, in report order.
    pub bins: Vec<Bin>,
    index: HashMap<String, usize>,
    /// Per configuration: path id -> (path name, key).
    paths: BTreeMap<String, Vec<(Option<u8>, String, PathKey)>>,
}

impl CoverageModel {
    /// The model of `configs` (computes the reachability of every path; a few seconds for
    /// the committed configurations, once per process).
    pub fn new(configs: &[LaneConfig]) -> CoverageModel {
        let mut bins = Vec::new();
        let mut paths = BTreeMap::new();
        for cfg in configs {
            for e in Event::ALL.iter().filter(|e| e.applies(cfg)) {
                bins.push(Bin {
                    name: format!("{}/event/{}", cfg.name, e.name()),
                    excluded: None,
                });
            }
            let ps = PathKey::of(cfg);
            for (_, pname, key) in &ps {
                let r = reach(*key);
                let mut reachable: BTreeSet<(&'static str, String)> = BTreeSet::new();
                for wc in r.classes.keys() {
                    for sel in [false, true] {
                        reachable.extend(word_bins(key, wc, sel));
                    }
                }
                for (point, bin) in path_bins(key) {
                    let excluded =
                        (!reachable.contains(&(point, bin.clone()))).then(|| exclusion_reason(key, point, &bin, &r));
                    bins.push(Bin {
                        name: format!("{}/{pname}/{point}/{bin}", cfg.name),
                        excluded,
                    });
                }
            }
            paths.insert(cfg.name.clone(), ps);
        }
        let index = bins.iter().enumerate().map(|(i, b)| (b.name.clone(), i)).collect();
        CoverageModel {
            configs: configs.iter().map(|c| c.name.clone()).collect(),
            bins,
            index,
            paths,
        }
    }

    /// Hits per bin (in [`CoverageModel::bins`] order) of `cov`. `Err` names a bin that `cov` hit
    /// but the model excludes or does not have: the reachability reasoning would be wrong.
    pub fn hits(&self, cov: &Coverage) -> Result<Vec<u64>, CosimError> {
        let mut hits = vec![0u64; self.bins.len()];
        let mut add = |name: String, n: u64| -> Result<(), CosimError> {
            let i = *self
                .index
                .get(&name)
                .ok_or_else(|| CosimError::Coverage(format!("bin {name} was hit but is not in the coverage model")))?;
            if let Some(r) = &self.bins[i].excluded {
                return Err(CosimError::Coverage(format!(
                    "bin {name} was hit {n} times but is excluded as unreachable ({r})"
                )));
            }
            hits[i] += n;
            Ok(())
        };
        for (cfg, c) in &cov.configs {
            let paths = self.paths.get(cfg).ok_or_else(|| {
                CosimError::Coverage(format!("configuration {cfg} has hits but is not in the coverage model"))
            })?;
            for ((path, wc, sel), n) in &c.words {
                let (_, pname, key) = paths.iter().find(|p| p.0 == *path).ok_or_else(|| {
                    CosimError::Coverage(format!("configuration {cfg}: hits on an unknown path {path:?}"))
                })?;
                for (point, bin) in word_bins(key, wc, *sel) {
                    add(format!("{cfg}/{pname}/{point}/{bin}"), *n)?;
                }
            }
            for (e, n) in &c.events {
                add(format!("{cfg}/event/{}", e.name()), *n)?;
            }
        }
        Ok(hits)
    }

    /// The report of `cov` against this model.
    pub fn report(&self, cov: &Coverage) -> Result<Report, CosimError> {
        let hits = self.hits(cov)?;
        let mut bins: Vec<(String, u64, Option<String>)> = self
            .bins
            .iter()
            .zip(hits)
            .map(|(b, h)| (b.name.clone(), h, b.excluded.clone()))
            .collect();
        // The report's order: the reachable bins, then the excluded ones (as in the JSON).
        bins.sort_by_key(|b| b.2.is_some());
        Ok(Report {
            bins,
            configs: self.configs.clone(),
            items: cov.items.iter().cloned().collect(),
        })
    }
}

/// A coverage report: every bin with its hits (and exclusion reason; the reachable bins
/// first, then the excluded ones, each in model order), the configurations and
/// the items it covers. Written and read as JSON ([`Report::to_json`], [`Report::from_json`]);
/// shards' reports merge ([`Report::merge`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// `(name, hits, exclusion reason)` in model order.
    pub bins: Vec<(String, u64, Option<String>)>,
    /// Configurations of the run, in run order.
    pub configs: Vec<String>,
    /// Items (`config/layer`) whose hits are in the report, sorted.
    pub items: Vec<String>,
}

impl Report {
    /// Reachable bins.
    pub fn reachable(&self) -> usize {
        self.bins.iter().filter(|b| b.2.is_none()).count()
    }

    /// Reachable bins hit at least once.
    pub fn hit(&self) -> usize {
        self.bins.iter().filter(|b| b.2.is_none() && b.1 > 0).count()
    }

    /// Excluded bins.
    pub fn excluded(&self) -> usize {
        self.bins.len() - self.reachable()
    }

    /// Reachable bins never hit, in model order.
    pub fn holes(&self) -> Vec<&str> {
        self.bins
            .iter()
            .filter(|b| b.2.is_none() && b.1 == 0)
            .map(|b| b.0.as_str())
            .collect()
    }

    /// Percent of the reachable bins hit, rounded down to 0.1 (so 100.0 means all).
    pub fn percent(&self) -> f64 {
        let r = self.reachable();
        if r == 0 {
            return 100.0;
        }
        (self.hit() as f64 * 1000.0 / r as f64).floor() / 10.0
    }

    /// `coverage: <hit>/<reachable> reachable bins (<p> %), <x> excluded, <h> holes`.
    pub fn line(&self) -> String {
        format!(
            "coverage: {}/{} reachable bins ({:.1} %), {} excluded, {} holes",
            self.hit(),
            self.reachable(),
            self.percent(),
            self.excluded(),
            self.holes().len()
        )
    }

    /// The JSON document: `bins` (reachable: `name`, `hits`), `reachable`, `hit`, `percent`,
    /// `holes` (names), `excluded` (count), `excluded_bins` (`name`, `hits`, `reason`),
    /// `configs`, `items`.
    pub fn to_json(&self) -> Value {
        let bins: Vec<Value> = self
            .bins
            .iter()
            .filter(|b| b.2.is_none())
            .map(|b| json!({"name": b.0, "hits": b.1}))
            .collect();
        let excluded: Vec<Value> = self
            .bins
            .iter()
            .filter_map(|b| b.2.as_ref().map(|r| json!({"name": b.0, "hits": b.1, "reason": r})))
            .collect();
        json!({
            "bins": bins,
            "reachable": self.reachable(),
            "hit": self.hit(),
            "percent": self.percent(),
            "holes": self.holes(),
            "excluded": self.excluded(),
            "excluded_bins": excluded,
            "configs": self.configs,
            "items": self.items,
        })
    }

    /// Writes [`Report::to_json`] to `path` (atomically).
    pub fn write(&self, path: &Path) -> Result<(), CosimError> {
        let text = serde_json::to_string_pretty(&self.to_json()).expect("JSON of a report");
        sop_atomic_write::write(path, format!("{text}\n").as_bytes()).map_err(|e| CosimError::Io {
            path: path.to_path_buf(),
            source: e.into_io(),
        })
    }

    /// Reads a report written by [`Report::write`]; `file` names it in errors.
    pub fn from_json(file: &str, text: &str) -> Result<Report, CosimError> {
        let bad = |what: String| CosimError::Coverage(format!("{file}: {what}"));
        let v: Value = serde_json::from_str(text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let strings = |key: &str| -> Result<Vec<String>, CosimError> {
            v.get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("no `{key}` array")))?
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad(format!("`{key}` holds a non-string")))
                })
                .collect()
        };
        let mut bins = Vec::new();
        for (key, excluded) in [("bins", false), ("excluded_bins", true)] {
            let arr = v
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("no `{key}` array: not a coverage report")))?;
            for b in arr {
                let name = b.get("name").and_then(Value::as_str);
                let hits = b.get("hits").and_then(Value::as_u64);
                let (Some(name), Some(hits)) = (name, hits) else {
                    return Err(bad(format!("a `{key}` entry without a name and hits: {b}")));
                };
                let reason = if excluded {
                    Some(
                        b.get("reason")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad(format!("excluded bin {name} has no reason")))?
                            .to_string(),
                    )
                } else {
                    None
                };
                bins.push((name.to_string(), hits, reason));
            }
        }
        let r = Report {
            bins,
            configs: strings("configs")?,
            items: strings("items")?,
        };
        for (key, want) in [("reachable", r.reachable()), ("hit", r.hit())] {
            if v.get(key).and_then(Value::as_u64) != Some(want as u64) {
                return Err(bad(format!("`{key}` does not match its bins (expected {want})")));
            }
        }
        Ok(r)
    }

    /// Joins shards' reports: the same model (same configurations and bins) required, hits
    /// summed; an item in two reports is an error. The order of the inputs does not matter.
    pub fn merge(reports: &[(String, Report)]) -> Result<Report, CosimError> {
        let Some((first_name, first)) = reports.first() else {
            return Err(CosimError::Coverage("no coverage reports to merge".into()));
        };
        // The model order of the result: by name, so that it does not depend on the inputs'
        // order (every input has the same bins).
        let mut bins: BTreeMap<String, (u64, Option<String>)> = BTreeMap::new();
        let order: Vec<String> = first.bins.iter().map(|b| b.0.clone()).collect();
        let mut items: BTreeMap<String, String> = BTreeMap::new();
        for (name, r) in reports {
            if r.configs != first.configs || r.bins.len() != first.bins.len() {
                return Err(CosimError::Coverage(format!(
                    "{name} and {first_name} are reports of different runs (configurations or bins differ)"
                )));
            }
            for (b, h, x) in &r.bins {
                let e = bins.entry(b.clone()).or_insert((0, x.clone()));
                if e.1 != *x {
                    return Err(CosimError::Coverage(format!(
                        "{name}: bin {b} is excluded in one report and not in another"
                    )));
                }
                e.0 += h;
            }
            for it in &r.items {
                if let Some(other) = items.insert(it.clone(), name.clone()) {
                    return Err(CosimError::Coverage(format!(
                        "item {it} is in both {other} and {name}: shards overlap or a file was given twice"
                    )));
                }
            }
        }
        if bins.len() != order.len() {
            return Err(CosimError::Coverage(format!(
                "the reports' bins differ from {first_name}'s"
            )));
        }
        Ok(Report {
            bins: order
                .into_iter()
                .map(|n| {
                    let (h, x) = bins.remove(&n).expect("every input has the same bins");
                    (n, h, x)
                })
                .collect(),
            configs: first.configs.clone(),
            items: items.into_keys().collect(),
        })
    }
}

/// The magnitude classes of a block-scale format (for the directed stimulus and tests).
pub fn scale_mag_classes(format: ScaleFormat) -> Vec<MagClass> {
    mag_classes(&scale_format(format).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sop_hw::default_configs;

    fn key(name: &str) -> PathKey {
        let cfg = default_configs().into_iter().find(|c| c.name == name).unwrap();
        PathKey::of(&cfg)[0].2
    }

    /// The rules never exclude a bin some input reaches (they explain, they do not decide).
    #[test]
    fn exclusion_rules_are_sound() {
        for cfg in default_configs().into_iter().filter(|c| !c.engine) {
            let (_, _, k) = PathKey::of(&cfg)[0];
            let r = reach(k);
            let mut reachable = BTreeSet::new();
            for wc in r.classes.keys() {
                for sel in [false, true] {
                    reachable.extend(word_bins(&k, wc, sel));
                }
            }
            for (point, bin) in path_bins(&k) {
                let why = exclusion_reason(&k, point, &bin, &r);
                if !why.starts_with("no input produces it") && !why.starts_with("no code of this class") {
                    assert!(
                        !reachable.contains(&(point, bin.clone())),
                        "{}: {point}/{bin}: {why}",
                        cfg.name
                    );
                }
            }
        }
    }

    #[test]
    fn hif_to_fp16_never_rounds_a_normal_product_but_subnormals_tie() {
        let r = reach(key("sop_c4_hif8_ue4m4_fp16"));
        let outs: BTreeSet<PackOutcome> = r.classes.keys().map(|c| c.outcome).collect();
        assert!(!outs.iter().any(|o| o.rounds_normal()), "{outs:?}");
        for o in [
            PackOutcome::Exact,
            PackOutcome::SubTieDown,
            PackOutcome::SubTieUp,
            PackOutcome::UnderflowZero,
            PackOutcome::OverflowMax,
        ] {
            assert!(outs.contains(&o), "{o:?}");
        }
        assert!(!outs.contains(&PackOutcome::OverflowInf));
        // HIF8 x bias x scale: 96 non-zero words x 201 biases + 160 zero words, x 256.
        assert_eq!(r.inputs, (96 * 201 + 160) * 256);
        // FP16 entries round in every way.
        let r = reach(key("sop_c4_fp16lut_ue4m4_fp16"));
        let outs: BTreeSet<PackOutcome> = r.classes.keys().map(|c| c.outcome).collect();
        assert_eq!(outs.len(), PackOutcome::ALL.len() - 1, "{outs:?}");
    }

    #[test]
    fn reports_merge_and_round_trip() {
        let cfgs: Vec<LaneConfig> = default_configs()
            .into_iter()
            .filter(|c| c.name == "sop_c4_hif8_ue4m4_fp16")
            .collect();
        let m = CoverageModel::new(&cfgs);
        let mut c = Collected::default();
        c.event(Event::IdleGap);
        let (_, w) = reach(PathKey::of(&cfgs[0])[0].2)
            .classes
            .iter()
            .next()
            .map(|(k, w)| (*w, *k))
            .unwrap();
        c.words.insert((None, w, true), 3);
        let mut a = Coverage::default();
        a.add_item(&cfgs[0].name, "a", &c);
        let mut b = Coverage::default();
        b.add_item(&cfgs[0].name, "b", &c);
        let (ra, rb) = (m.report(&a).unwrap(), m.report(&b).unwrap());
        let text = serde_json::to_string(&ra.to_json()).unwrap();
        assert!(Report::from_json("a.json", &text).unwrap() == ra, "JSON round trip");
        let ab = Report::merge(&[("a".into(), ra.clone()), ("b".into(), rb.clone())]).unwrap();
        let ba = Report::merge(&[("b".into(), rb), ("a".into(), ra.clone())]).unwrap();
        assert!(ab == ba, "merge order");
        let mut both = a.clone();
        both.add_item(&cfgs[0].name, "b", &c);
        assert!(ab == m.report(&both).unwrap(), "merge = one run of both items");
        assert_eq!(ab.hit(), ra.hit());
        let e = Report::merge(&[("a".into(), ra.clone()), ("a2".into(), ra)]).unwrap_err();
        assert!(e.to_string().contains("in both a and a2"), "{e}");
        assert!(Report::from_json("x.json", "{")
            .unwrap_err()
            .to_string()
            .contains("x.json: not JSON"));
        assert!(Report::from_json("x.json", "{}")
            .unwrap_err()
            .to_string()
            .contains("no `bins` array"));
        // A hit on an excluded bin is an error, not a silent count.
        let mut bad = Coverage::default();
        let mut c2 = Collected::default();
        let mut wc = w;
        wc.outcome = PackOutcome::OverflowInf;
        c2.words.insert((None, wc, false), 1);
        bad.add_item(&cfgs[0].name, "x", &c2);
        assert!(m
            .report(&bad)
            .unwrap_err()
            .to_string()
            .contains("excluded as unreachable"));
    }
}
