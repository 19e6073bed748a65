//! JUnit XML: one test case per layer x configuration; a failing case carries the first
//! mismatch report of that layer.

use std::fmt::Write as _;
use std::path::Path;

use crate::run::CosimSummary;
use crate::CosimError;

/// Escapes text for XML attribute values and element content.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// The JUnit XML document of a run: a `<testsuite>` per configuration (in run order), a
/// `<testcase classname="sop-cosim.<config>" name="<layer>">` per layer (with the point,
/// shape and weight count in its `<system-out>`), `<failure>` with the first mismatch report
/// for a layer with mismatches, `<skipped>` for pairs not run after the mismatch limit.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::LayerReport;

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
