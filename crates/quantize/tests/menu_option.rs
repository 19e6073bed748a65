//! Menu-option names (`POINT[+O<p>%][+R<p>%]`): parsing never panics on odd text.

use sop_quantize::sparse::MenuOption;

/// Regression (found by review while fuzzing `point_name`): a suffix whose first character is
/// more than one byte (`+é%`) made the parser split a `str` inside that character and panic.
#[test]
fn multibyte_suffix_is_an_error_not_a_panic() {
    for name in ["E2M3sUE4M4+é%", "E2M3sUE4M4+€1%", "NF4+DD4sUE4M4+Rü%", "E4M3-POT+%"] {
        let e = name.parse::<MenuOption>().unwrap_err();
        assert!(e.contains(name), "{name}: {e}");
    }
    let o: MenuOption = "E2M3sUE4M4+O0.5%+R1%".parse().unwrap();
    assert_eq!((o.outlier_pct, o.residual_pct), (0.5, 1.0));
    assert_eq!(o.to_string().parse::<MenuOption>().unwrap(), o);
}
