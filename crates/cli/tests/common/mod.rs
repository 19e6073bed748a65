//! Helpers shared by the CLI end-to-end tests.

/// Asserts a failed run that printed exactly one `error:` line containing every needle,
/// and no panic.
pub fn one_line_error(code: i32, err: &str, needles: &[&str]) {
    assert_ne!(code, 0, "expected failure, stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "stderr: {err}");
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' missing from: {}", lines[0]);
    }
    assert!(!err.contains("panicked"), "{err}");
}
