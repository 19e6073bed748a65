//! End-to-end tests of `sop formats ...`: output shape, exactness, and bad input.

use std::io::Write;
use std::process::{Command, Stdio};

fn sop(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Feed stdin from another thread: with large inputs (the 65536-line BF16 table) writing
    // everything before reading stdout deadlocks once both pipes are full.
    let mut pipe = child.stdin.take().unwrap();
    let input = stdin.as_bytes().to_vec();
    let writer = std::thread::spawn(move || pipe.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn e2m3_table_has_the_64_ocp_values() {
    let (code, out, _) = sop(&["formats", "table", "E2M3"], "");
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 64);
    for (i, line) in lines.iter().enumerate() {
        let (c, v) = line.split_once('\t').unwrap();
        assert_eq!(c.parse::<usize>().unwrap(), i);
        // OCP E2M3: sign, 2-bit exponent (bias 1), 3-bit mantissa, subnormals.
        let (s, e, m) = ((i >> 5) & 1, (i >> 3) & 3, i & 7);
        let mag = if e == 0 {
            m as f32 / 8.0
        } else {
            (1.0 + m as f32 / 8.0) * 2f32.powi(e as i32 - 1)
        };
        let want = if s == 1 { -mag } else { mag };
        assert_eq!(v.parse::<f32>().unwrap().to_bits(), want.to_bits(), "code {i}");
    }
}

#[test]
fn tables_print_values_that_parse_back_exactly() {
    for f in [
        "E2M1", "E3M2", "E4M3", "E5M2", "UE8M0", "UE4M4", "S+E4M3", "HIF7", "HIF8", "BF16",
    ] {
        let (code, out, _) = sop(&["formats", "table", f], "");
        assert_eq!(code, 0, "{f}");
        let mut text = String::new();
        for line in out.lines() {
            text.push_str(line.split_once('\t').unwrap().1);
            text.push('\n');
        }
        // Feeding the finite values back through `decode(encode)` returns them exactly
        // (NaN has no code in most formats; infinities saturate by design).
        let text: String = text
            .lines()
            .filter(|l| !["nan", "inf", "-inf"].contains(l))
            .map(|l| format!("{l}\n"))
            .collect();
        let (code, codes, err) = sop(&["formats", "encode", f], &text);
        assert_eq!(code, 0, "{f}: {err}");
        let (_, again, _) = sop(&["formats", "decode", f], &codes);
        let want: Vec<&str> = text.lines().collect();
        let got: Vec<&str> = again.lines().collect();
        assert_eq!(got.len(), want.len(), "{f}");
        for (g, w) in got.iter().zip(&want) {
            let (g, w) = (g.parse::<f32>().unwrap(), w.parse::<f32>().unwrap());
            assert!(g == w, "{f}: {w} came back as {g}");
        }
    }
}

#[test]
fn encode_reads_decimal_and_hex_patterns() {
    let (code, out, _) = sop(&["formats", "encode", "E4M3"], "1.0\n0x3f800000\n-448\n1e9\n\n0.0\n");
    assert_eq!(code, 0);
    assert_eq!(out, "56\n56\n254\n126\n0\n");
}

#[test]
fn bad_input_is_a_one_line_error_and_nonzero_exit() {
    for (args, stdin, needle) in [
        (vec!["formats", "table", "E9M9"], "", "unknown format 'E9M9'"),
        (
            vec!["formats", "encode", "E2M3"],
            "1.0\nabc\n",
            "line 2: cannot parse 'abc'",
        ),
        (vec!["formats", "encode", "E2M3"], "0xZZ\n", "0x-prefixed"),
        (vec!["formats", "encode", "E2M3"], "nan\n", "NaN has no code in E2M3"),
        (vec!["formats", "encode", "UE4M4"], "-2\n", "negative value"),
        (
            vec!["formats", "decode", "E2M1"],
            "16\n",
            "code 16 is out of range for E2M1",
        ),
        (
            vec!["formats", "table", "E2M3", "--bias", "3"],
            "",
            "--bias applies only",
        ),
    ] {
        let (code, _, err) = sop(&args, stdin);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: one-line error, got {err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn list_names_every_format() {
    let (code, out, _) = sop(&["formats", "list"], "");
    assert_eq!(code, 0);
    for f in [
        "E2M1", "E2M3", "E3M2", "E4M3", "E5M2", "UE8M0", "UE4M4", "S+E4M3", "FP16", "BF16", "HIF7", "HIF8",
    ] {
        assert!(out.lines().any(|l| l.starts_with(f)), "{f} missing");
    }
    assert!(out.contains("496.0") && out.contains("80 non-zero") && out.contains("96 non-zero"));
}

/// `sop formats table BF16 | head -1`: the reader goes away, sop ends quietly (SIGPIPE, as
/// Unix tools do), not with a panic about a broken pipe.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_output_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sop"))
        .args(["formats", "table", "BF16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("0\t"), "{first}");
    // The reader is dropped here; the 65,536-line table cannot fit the pipe's buffer.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}: {err}", out.status);
}
