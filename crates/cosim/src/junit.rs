//! JUnit XML: one test case per layer x configuration; a failing case carries the first
//! mismatch report of that layer.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::summary::CosimSummary;
use crate::CosimError;

/// Escapes text for XML attribute values and element content (other writers use it too).
pub(crate) use crate::xml::escape as esc;
use crate::xml::{Element, Node};

/// The JUnit XML document of a run: a `<testsuite>` per configuration (in run order), a
/// `<testcase classname="sop-cosim.<config>" name="<layer>">` per layer (with the point,
/// shape and weight count in its `<system-out>`), `<failure>` with the first mismatch report
/// for a layer with mismatches, `<skipped>` for pairs not run after the mismatch limit.
///
/// Each suite's `<properties>` name the whole (unsharded) run's configurations and layers in
/// run order (`sop-cosim.configs`, `sop-cosim.layers`: JSON arrays), so that
/// [`merge_junit`] can put the shards' suites and test cases back in run order.
pub fn junit_xml(s: &CosimSummary) -> String {
    let mut configs: Vec<&str> = Vec::new();
    for r in &s.reports {
        if !configs.contains(&r.config.as_str()) {
            configs.push(&r.config);
        }
    }
    for (c, _) in &s.skipped {
        if !configs.contains(&c.as_str()) {
            configs.push(c);
        }
    }
    let failures = s.reports.iter().filter(|r| r.mismatches > 0).count();
    let tests = s.reports.len() + s.skipped.len();
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"sop-cosim\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        s.skipped.len(),
        s.wall_secs
    );
    for c in configs {
        let rs: Vec<_> = s.reports.iter().filter(|r| r.config == c).collect();
        let sk: Vec<_> = s.skipped.iter().filter(|(k, _)| k == c).collect();
        let f = rs.iter().filter(|r| r.mismatches > 0).count();
        let t: f64 = rs.iter().map(|r| r.sim_secs + r.quant_secs).sum();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"{}\" time=\"{t:.3}\">",
            esc(c),
            rs.len() + sk.len(),
            sk.len()
        );
        if !s.plan_configs.is_empty() {
            x.push_str("    <properties>\n");
            for (k, v) in [(PROP_CONFIGS, &s.plan_configs), (PROP_LAYERS, &s.plan_layers)] {
                let json = serde_json::to_string(v).expect("a list of strings");
                let _ = writeln!(x, "      <property name=\"{k}\" value=\"{}\"/>", esc(&json));
            }
            x.push_str("    </properties>\n");
        }
        for r in rs {
            let _ = writeln!(
                x,
                "    <testcase classname=\"sop-cosim.{}\" name=\"{}\" time=\"{:.3}\">",
                esc(c),
                esc(&r.layer),
                r.sim_secs + r.quant_secs
            );
            if r.mismatches > 0 {
                let msg = format!("{} mismatches against the golden model", r.mismatches);
                let body = r.first_mismatch.as_ref().map(|m| m.to_string()).unwrap_or_default();
                let _ = writeln!(
                    x,
                    "      <failure type=\"mismatch\" message=\"{}\">{}</failure>",
                    esc(&msg),
                    esc(&body)
                );
            }
            let _ = writeln!(
                x,
                "      <system-out>point {}, shape {}x{}, {} weights streamed, {} mismatches</system-out>",
                esc(&r.point),
                r.shape.0,
                r.shape.1,
                r.weights,
                r.mismatches
            );
            x.push_str("    </testcase>\n");
        }
        for (_, layer) in sk {
            let _ = writeln!(
                x,
                "    <testcase classname=\"sop-cosim.{}\" name=\"{}\" time=\"0\">\n      <skipped message=\"not run: the mismatch limit was reached\"/>\n    </testcase>",
                esc(c),
                esc(layer)
            );
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// Writes [`junit_xml`] to `path`, whole or not at all (temporary file, fsync, rename).
pub fn write_junit(s: &CosimSummary, path: &Path) -> Result<(), CosimError> {
    sop_atomic_write::write(path, junit_xml(s).as_bytes()).map_err(|e| CosimError::Io {
        path: path.to_path_buf(),
        source: e.into_io(),
    })
}

/// The suite property naming the run's configurations in order (a JSON array).
pub const PROP_CONFIGS: &str = "sop-cosim.configs";
/// The suite property naming the run's layers in order (a JSON array).
pub const PROP_LAYERS: &str = "sop-cosim.layers";

/// The result of [`merge_junit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MergedJunit {
    /// The merged document.
    pub xml: String,
    /// Test suites in it.
    pub suites: usize,
    /// Test cases (summed `tests`).
    pub tests: u64,
    /// Failed test cases (summed `failures`).
    pub failures: u64,
    /// Errors (summed `errors`).
    pub errors: u64,
    /// Skipped test cases (summed `skipped`).
    pub skipped: u64,
}

/// Joins JUnit documents (`(path, text)`, the path for messages), e.g. the shards of `sop
/// cosim --shard K/N`, into one `<testsuites>`: suites of the same name become one (their
/// `tests`, `failures`, `errors`, `skipped` and `time` summed, every test case kept), as do the
/// roots' counts. Order: when every suite carries the `sop-cosim.configs` and
/// `sop-cosim.layers` properties of one run, suites in configuration order and test cases in
/// layer order (the unsharded run's order); otherwise suites in order of first appearance and
/// test cases in input order. Errors: a document that is not JUnit, a test case (classname and
/// name) in two inputs, suites of different runs.
pub fn merge_junit(inputs: &[(PathBuf, String)]) -> Result<MergedJunit, CosimError> {
    let bad = |p: &Path, what: String| CosimError::Config(format!("{}: {what}", p.display()));
    let mut root_attrs: Option<Vec<(String, String)>> = None;
    let mut suites: Vec<Element> = Vec::new();
    let mut origin: Vec<(String, String, PathBuf)> = Vec::new();
    let mut sums = [0u64; 4];
    let mut time = 0f64;
    for (path, text) in inputs {
        let root = crate::xml::parse(text).map_err(|e| bad(path, e))?;
        let list: Vec<Element> = match root.name.as_str() {
            "testsuites" => {
                if let Some(o) = root.children.iter().find(|c| match c {
                    Node::Element(e) => e.name != "testsuite",
                    Node::Text(t) => !t.trim().is_empty(),
                }) {
                    let what = match o {
                        Node::Element(e) => format!("<{}>", e.name),
                        Node::Text(_) => "text".into(),
                    };
                    return Err(bad(path, format!("<testsuites> holds {what}, not only <testsuite>")));
                }
                if root_attrs.is_none() {
                    root_attrs = Some(root.attrs.clone());
                }
                root.elements("testsuite").cloned().collect()
            }
            "testsuite" => vec![root],
            other => return Err(bad(path, format!("not a JUnit file: the root is <{other}>"))),
        };
        for mut suite in list {
            let name = suite
                .attr("name")
                .ok_or_else(|| bad(path, "a <testsuite> without a name".into()))?
                .to_string();
            for (k, v) in ["tests", "failures", "errors", "skipped"].iter().zip(sums.iter_mut()) {
                *v += count_attr(&suite, k).map_err(|e| bad(path, e))?;
            }
            time += time_attr(&suite).map_err(|e| bad(path, e))?;
            for case in suite.elements("testcase") {
                let key = (
                    case.attr("classname").unwrap_or("").to_string(),
                    case.attr("name").unwrap_or("").to_string(),
                );
                if let Some((_, _, first)) = origin.iter().find(|(c, n, _)| (c, n) == (&key.0, &key.1)) {
                    return Err(bad(
                        path,
                        format!(
                            "test case {} {} is also in {}: the inputs overlap",
                            key.0,
                            key.1,
                            first.display()
                        ),
                    ));
                }
                origin.push((key.0, key.1, path.clone()));
            }
            match suites.iter_mut().find(|s| s.attr("name") == Some(name.as_str())) {
                None => suites.push(suite),
                Some(m) => {
                    if properties(m) != properties(&suite) {
                        return Err(bad(
                            path,
                            format!(
                                "suite {name}: its <properties> differ from the earlier input's: not shards of one run"
                            ),
                        ));
                    }
                    for k in ["tests", "failures", "errors", "skipped"] {
                        let v = count_attr(m, k).map_err(|e| bad(path, e))?
                            + count_attr(&suite, k).map_err(|e| bad(path, e))?;
                        m.set_attr(k, v.to_string());
                    }
                    let t = time_attr(m).map_err(|e| bad(path, e))? + time_attr(&suite).map_err(|e| bad(path, e))?;
                    m.set_attr("time", format!("{t:.3}"));
                    let cases = suite
                        .children
                        .drain(..)
                        .filter(|c| matches!(c, Node::Element(e) if e.name == "testcase"));
                    m.children.extend(cases);
                }
            }
        }
    }
    // Run order, when every suite says what it is.
    let plans: Vec<Option<(Vec<String>, Vec<String>)>> = suites.iter().map(plan_of).collect();
    if let Some(Some(plan)) = plans.first() {
        if plans.iter().all(|p| p.as_ref() == Some(plan)) {
            let (configs, layers) = plan;
            let pos = |list: &[String], n: &str| list.iter().position(|x| x == n).unwrap_or(usize::MAX);
            suites.sort_by_key(|s| pos(configs, s.attr("name").unwrap_or("")));
            for s in &mut suites {
                let (mut cases, other): (Vec<Node>, Vec<Node>) = s
                    .children
                    .drain(..)
                    .partition(|c| matches!(c, Node::Element(e) if e.name == "testcase"));
                cases.sort_by_key(|c| match c {
                    Node::Element(e) => pos(layers, e.attr("name").unwrap_or("")),
                    Node::Text(_) => usize::MAX,
                });
                s.children = other;
                s.children.extend(cases);
            }
        } else if plans.iter().any(Option::is_some) {
            return Err(CosimError::Config(
                "the inputs' suites name different runs (sop-cosim.configs / sop-cosim.layers): not shards of one run"
                    .into(),
            ));
        }
    }
    let mut root = Element {
        name: "testsuites".into(),
        attrs: root_attrs.unwrap_or_else(|| vec![("name".into(), "merged".into())]),
        children: Vec::new(),
    };
    let [tests, failures, errors, skipped] = sums;
    for (k, v) in [
        ("tests", tests),
        ("failures", failures),
        ("errors", errors),
        ("skipped", skipped),
    ] {
        root.set_attr(k, v.to_string());
    }
    root.set_attr("time", format!("{time:.3}"));
    let n = suites.len();
    root.children = suites.into_iter().map(Node::Element).collect();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    root.write(&mut xml, 0);
    Ok(MergedJunit {
        xml,
        suites: n,
        tests,
        failures,
        errors,
        skipped,
    })
}

/// A suite's `(name, value)` properties.
fn properties(s: &Element) -> Vec<(String, String)> {
    s.elements("properties")
        .flat_map(|p| p.elements("property"))
        .map(|p| {
            (
                p.attr("name").unwrap_or("").to_string(),
                p.attr("value").unwrap_or("").to_string(),
            )
        })
        .collect()
}

/// The run a suite belongs to: its configurations and layers, from its properties.
fn plan_of(s: &Element) -> Option<(Vec<String>, Vec<String>)> {
    let props = properties(s);
    let get = |k: &str| -> Option<Vec<String>> {
        let v = &props.iter().find(|(n, _)| n == k)?.1;
        serde_json::from_str(v).ok()
    };
    Some((get(PROP_CONFIGS)?, get(PROP_LAYERS)?))
}

/// A count attribute (absent: 0).
fn count_attr(e: &Element, k: &str) -> Result<u64, String> {
    match e.attr(k) {
        None => Ok(0),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("<{}> attribute {k}=\"{v}\" is not a count", e.name)),
    }
}

/// The `time` attribute in seconds (absent: 0).
fn time_attr(e: &Element) -> Result<f64, String> {
    match e.attr("time") {
        None => Ok(0.0),
        Some(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| format!("<{}> attribute time=\"{v}\" is not a number of seconds", e.name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_an_empty_shard_and_refuses_overlaps() {
        let one = |layer: &str| CosimSummary {
            reports: vec![LayerReport {
                config: "c".into(),
                point: "p".into(),
                layer: layer.into(),
                shape: (1, 16),
                weights: 16,
                mismatches: 0,
                first_mismatch: None,
                quant_secs: 0.0,
                sim_secs: 0.0,
                reload_checked: 4,
            }],
            plan_configs: vec!["c".into()],
            plan_layers: vec!["a".into(), "b".into()],
            ..CosimSummary::default()
        };
        let empty = CosimSummary::default();
        let files = |s: &[&CosimSummary]| -> Vec<(PathBuf, String)> {
            s.iter()
                .enumerate()
                .map(|(i, s)| (PathBuf::from(format!("s{i}.xml")), junit_xml(s)))
                .collect()
        };
        let (a, b) = (one("a"), one("b"));
        let m = merge_junit(&files(&[&b, &empty, &a])).unwrap();
        assert_eq!((m.suites, m.tests, m.failures, m.skipped), (1, 2, 0, 0));
        // Layer order of the run, not of the inputs.
        let (ia, ib) = (m.xml.find("name=\"a\"").unwrap(), m.xml.find("name=\"b\"").unwrap());
        assert!(ia < ib, "{}", m.xml);
        let e = merge_junit(&files(&[&a, &a])).unwrap_err().to_string();
        assert!(e.contains("s1.xml") && e.contains("also in s0.xml"), "{e}");
    }
    use crate::summary::LayerReport;

    #[test]
    fn escapes_and_counts() {
        let s = CosimSummary {
            reports: vec![LayerReport {
                config: "c<1>".into(),
                point: "NF4+DD4sUE4M4".into(),
                layer: "a&b\"".into(),
                shape: (2, 3),
                weights: 6,
                mismatches: 0,
                first_mismatch: None,
                quant_secs: 0.5,
                sim_secs: 0.25,
                reload_checked: 0,
            }],
            skipped: vec![("c<1>".into(), "later".into())],
            ..CosimSummary::default()
        };
        let x = junit_xml(&s);
        assert!(x.contains("name=\"c&lt;1&gt;\""), "{x}");
        assert!(x.contains("name=\"a&amp;b&quot;\""), "{x}");
        assert!(
            x.contains("tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("<skipped "), "{x}");
        assert!(!x.contains("<failure"), "{x}");
    }
}
