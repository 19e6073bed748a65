//! SVG charts for the reports, written by hand (no plotting dependency) so that the same data
//! always gives the same bytes.
//!
//! [`strip_chart_log`] draws one row per series (an operating point) with one dot per value
//! (a layer's error) on a shared logarithmic axis, and marks each row's median: the shape of
//! the per-layer error distribution of every format at a glance, which a table of numbers
//! does not give.

use std::fmt::Write as _;

/// One row of a strip chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Strip {
    /// Row label (e.g. the operating point).
    pub label: String,
    /// A short note under the label (e.g. `4.5635 bpw`).
    pub note: String,
    /// The values, one dot each. Zero, negative and non-finite values cannot sit on a log
    /// axis: they are not drawn, and the row says how many there were.
    pub values: Vec<f64>,
    /// The row's median as the caller computes it (so that the chart and the text summary
    /// show the same number): a bar and a label when positive and finite.
    pub median: Option<f64>,
}

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlotError {
    /// No series, or not one positive finite value in any of them.
    #[error("nothing to plot: {0}")]
    NoData(String),
}

/// Chart width in SVG user units (pixels).
const WIDTH: f64 = 760.0;
/// Left margin: the row labels.
const LEFT: f64 = 190.0;
/// Right margin: the median values.
const RIGHT: f64 = 120.0;
/// Space above the first row: the title and the subtitle.
const TOP: f64 = 58.0;
/// Space below the last row: the axis and its label.
const BOTTOM: f64 = 54.0;
/// Height of one row.
const ROW: f64 = 36.0;
/// Dot colours, one per row, cycling.
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
];

/// Renders `strips` as a strip chart on a base-10 logarithmic x axis spanning whole decades
/// around every positive finite value, titled `title` over a smaller `subtitle` line (empty:
/// none), with `x_label` under the axis. Each
/// row shows its label, note, one dot per positive finite value (spread vertically by a
/// fixed pattern so that equal values stay visible), and a bar at its median with the
/// median as text. Returns the SVG document.
pub fn strip_chart_log(title: &str, subtitle: &str, x_label: &str, strips: &[Strip]) -> Result<String, PlotError> {
    if strips.is_empty() {
        return Err(PlotError::NoData("no series".into()));
    }
    let positive = |v: &f64| v.is_finite() && *v > 0.0;
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in strips.iter().flat_map(|s| s.values.iter()).filter(|v| positive(v)) {
        lo = lo.min(v.log10());
        hi = hi.max(v.log10());
    }
    if !lo.is_finite() {
        return Err(PlotError::NoData(format!(
            "no positive finite value in {} series",
            strips.len()
        )));
    }
    let (d0, mut d1) = (lo.floor() as i32, hi.ceil() as i32);
    if d1 == d0 {
        d1 += 1;
    }
    let plot_w = WIDTH - LEFT - RIGHT;
    let x_of = |v: f64| LEFT + (v.log10() - f64::from(d0)) / f64::from(d1 - d0) * plot_w;
    let height = TOP + ROW * strips.len() as f64 + BOTTOM;
    let axis_y = TOP + ROW * strips.len() as f64;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    if !subtitle.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="40" font-size="11" fill="#555555" text-anchor="middle">{}</text>"##,
            WIDTH / 2.0,
            escape(subtitle)
        );
    }
    // Decade grid lines with labels, lighter lines at 2..9 x each decade.
    for d in d0..=d1 {
        let x = x_of(10f64.powi(d));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{axis_y}" stroke="#bbbbbb"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">1e{d}</text>"#,
            axis_y + 16.0
        );
        if d < d1 {
            for k in 2..10 {
                let x = x_of(f64::from(k) * 10f64.powi(d));
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{axis_y}" stroke="#eeeeee"/>"##
                );
            }
        }
    }
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{:.1}" y2="{axis_y}" stroke="#333333"/>"##,
        WIDTH - RIGHT
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        axis_y + 40.0,
        escape(x_label)
    );
    for (i, strip) in strips.iter().enumerate() {
        let yc = TOP + ROW * (i as f64 + 0.5);
        let colour = PALETTE[i % PALETTE.len()];
        let hidden = strip.values.iter().filter(|v| !positive(v)).count();
        let mut note = strip.note.clone();
        if hidden > 0 {
            note = format!("{note}; {hidden} not drawn (<= 0 or not finite)");
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 10.0,
            yc - 2.0,
            escape(&strip.label)
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#555555">{}</text>"##,
            LEFT - 10.0,
            yc + 11.0,
            escape(&note)
        );
        for (j, &v) in strip.values.iter().filter(|v| positive(v)).enumerate() {
            // A fixed spread in -5..=5 steps: the same data always gives the same picture.
            let dy = ((j * 7) % 11) as f64 - 5.0;
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}" fill-opacity="0.55"/>"#,
                x_of(v),
                yc + dy * 1.6
            );
        }
        if let Some(median) = strip.median.filter(positive) {
            let xm = x_of(median);
            let _ = writeln!(
                s,
                r#"<line x1="{xm:.1}" y1="{:.1}" x2="{xm:.1}" y2="{:.1}" stroke="black" stroke-width="2"/>"#,
                yc - 13.0,
                yc + 13.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">median {median:.3e}</text>"#,
                WIDTH - RIGHT + 8.0,
                yc + 4.0
            );
        }
    }
    s.push_str("</svg>\n");
    Ok(s)
}

/// Escapes text for SVG (XML) character data and attribute values.
fn escape(t: &str) -> String {
    let mut o = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(label: &str, values: &[f64]) -> Strip {
        Strip {
            label: label.into(),
            note: "4.5 bpw".into(),
            values: values.to_vec(),
            median: values.first().copied(),
        }
    }

    fn circles_x(svg: &str) -> Vec<f64> {
        svg.lines()
            .filter(|l| l.starts_with("<circle"))
            .map(|l| {
                let a = l.find("cx=\"").unwrap() + 4;
                l[a..a + l[a..].find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn one_dot_per_drawable_value_in_axis_order() {
        let svg = strip_chart_log("t", "", "NMSE", &[strip("A", &[1e-3, 2e-3, 4e-4]), strip("B", &[5e-2])]).unwrap();
        // The medians given (here each strip's first value) are drawn as given.
        let xs = circles_x(&svg);
        assert_eq!(xs.len(), 4, "{svg}");
        // Log axis from 1e-4 to 1e-1: 2e-3 right of 1e-3 right of 4e-4, 5e-2 furthest right.
        assert!(xs[2] < xs[0] && xs[0] < xs[1] && xs[1] < xs[3], "{xs:?}");
        assert!(xs.iter().all(|&x| (LEFT..=WIDTH - RIGHT).contains(&x)), "{xs:?}");
        for d in -4..=-1 {
            assert!(svg.contains(&format!(">1e{d}</text>")), "decade {d}: {svg}");
        }
        assert!(svg.contains("median 1.000e-3"), "{svg}");
        assert!(svg.contains("median 5.000e-2"), "{svg}");
        assert!(svg.starts_with("<svg ") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn the_median_bar_sits_at_the_given_median() {
        let mut a = strip("A", &[1e-3, 1e-1]);
        a.median = Some(1e-2);
        let svg = strip_chart_log("t", "", "x", &[a.clone()]).unwrap();
        let xs = circles_x(&svg);
        let bar = svg.lines().find(|l| l.contains("stroke-width=\"2\"")).unwrap();
        let xm: f64 = bar[bar.find("x1=\"").unwrap() + 4..]
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((xm - (xs[0] + xs[1]) / 2.0).abs() < 0.11, "{xm} {xs:?}");
        assert!(svg.contains("median 1.000e-2"), "{svg}");
        a.median = None;
        let svg = strip_chart_log("t", "", "x", &[a]).unwrap();
        assert!(!svg.contains("median") && !svg.contains("stroke-width=\"2\""), "{svg}");
    }

    #[test]
    fn undrawable_values_are_counted_not_dropped_silently() {
        let svg = strip_chart_log("t", "", "x", &[strip("A", &[0.0, f64::NAN, -1.0, 1e-2, f64::INFINITY])]).unwrap();
        // (The given median, 0.0 here, cannot be drawn either.)
        assert!(!svg.contains("median"), "{svg}");
        assert_eq!(circles_x(&svg).len(), 1);
        assert!(svg.contains("4.5 bpw; 4 not drawn (&lt;= 0 or not finite)"), "{svg}");
    }

    #[test]
    fn text_is_escaped() {
        let svg = strip_chart_log("a<b & \"c\"", "d>e", "x", &[strip("NF4+DD4<&>", &[1.0])]).unwrap();
        assert!(svg.contains("a&lt;b &amp; &quot;c&quot;"), "{svg}");
        assert!(svg.contains(">d&gt;e</text>"), "{svg}");
        assert!(svg.contains(">NF4+DD4&lt;&amp;&gt;</text>"), "{svg}");
        assert!(!svg.contains("<b "), "{svg}");
    }

    #[test]
    fn no_data_is_an_error() {
        assert!(matches!(strip_chart_log("t", "", "x", &[]), Err(PlotError::NoData(_))));
        let e = strip_chart_log("t", "", "x", &[strip("A", &[0.0, f64::NAN])]).unwrap_err();
        assert_eq!(e.to_string(), "nothing to plot: no positive finite value in 1 series");
    }

    #[test]
    fn a_single_decade_still_has_a_width() {
        let svg = strip_chart_log("t", "", "x", &[strip("A", &[1e-3, 1e-3])]).unwrap();
        let xs = circles_x(&svg);
        assert_eq!(xs, vec![LEFT, LEFT], "{svg}");
        assert!(svg.contains(">1e-3</text>") && svg.contains(">1e-2</text>"), "{svg}");
    }

    #[test]
    fn same_data_same_bytes() {
        let s = [strip("A", &[3e-3, 1e-3, 2e-3]), strip("B", &[1e-4])];
        assert_eq!(strip_chart_log("t", "", "x", &s), strip_chart_log("t", "", "x", &s));
    }
}
