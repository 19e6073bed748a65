//! Power from real switching activity: the toggle rate and duty of every bit of a VCD
//! waveform (a traced Verilator run of a real layer, `sop_cosim::record_activity`), and the
//! OpenSTA annotation that puts them on the mapped netlist.
//!
//! The method (docs/qor.md, "Power from real switching activity"): the names that survive
//! synthesis carry the recorded activity -- every data input port, and every flip-flop,
//! which the flow names after the RTL register bit it holds (`<register>[bit]_reg`). A
//! flip-flop's output pin (its polarity as Yosys's `dfflibmap` states it: an ASAP7
//! `DFFHQN` drives the complement) and every pin of the net it drives get that bit's
//! activity;
//! OpenSTA propagates the rest through the combinational logic from these annotations.
//! (Debian's OpenSTA 2.0.17 reads neither VCD nor SAIF, and its `set_power_activity -pins`
//! is broken: the flow calls the command under it, `sta::set_power_pin_activity`. A user
//! activity on a driver pin alone does not reach the gates it drives in this version, so
//! the load pins are annotated too.)

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::QorError;

/// A recorded activity for one configuration's power analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct ActivityFile {
    /// The VCD waveform (a traced run of the configuration's top).
    pub vcd: PathBuf,
    /// What it records, for the tables (e.g. `minilm encoder.layer.0.attention.self.query,
    /// 147456 weights`).
    pub source: String,
}

/// Recorded activity of one signal bit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BitActivity {
    /// Transitions per clock cycle (0..=2; a register bit at most 1).
    pub activity: f64,
    /// Fraction of the time the bit is 1 (0..=1).
    pub duty: f64,
}

/// The activity of every bit of one design in a VCD.
#[derive(Clone, Debug, PartialEq)]
pub struct VcdActivity {
    /// The file read.
    pub path: PathBuf,
    /// Rising edges of the top module's `clock` in the file (the cycles the rates are per).
    pub cycles: u64,
    /// Every bit below the top module by hierarchical name (`lanes$0.lut.rdata[3]`, a port
    /// `code_0[2]`, a one-bit signal without an index).
    pub bits: BTreeMap<String, BitActivity>,
}

fn bad(path: &Path, problem: impl Into<String>) -> QorError {
    QorError::Activity {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Widest signal accepted, in bits (the designs' widest bus is 32 bits; a larger width is a
/// malformed file, not a reason to allocate).
const MAX_WIDTH: usize = 1 << 16;

/// One `$var` of the VCD below the top module.
struct Var {
    /// Hierarchical name below the top module, without a range.
    name: String,
    /// Index of bit 0 of the value string's last character (`lsb`), and the direction.
    lsb: i64,
    /// The range counts down (`[7:0]`): bit `k` of the value (from the right) is `lsb + k`.
    down: bool,
    width: usize,
    ranged: bool,
}

/// Per VCD identifier: its current value (bit 0 = last character) and per-bit counters.
struct Signal {
    vars: Vec<usize>,
    value: Vec<bool>,
    toggles: Vec<u64>,
    /// Time each bit is 1, up to its last rise.
    high: Vec<u64>,
    /// Time of each bit's last rise.
    rise: Vec<u64>,
    /// A value was seen (the first one, the `$dumpvars` initial value, is no transition).
    known: bool,
}

/// Applies the value change `bits` of identifier `id` at time `t`: counts each bit's
/// transitions (not the first value) and its time at 1.
fn apply(
    path: &Path,
    vars: &[Var],
    ids: &mut BTreeMap<String, Signal>,
    id: &str,
    bits: &str,
    t: u64,
    lineno: usize,
) -> Result<(), QorError> {
    // Identifiers outside the top module are not followed.
    let Some(s) = ids.get_mut(id) else { return Ok(()) };
    let w = s.value.len();
    let b = bits.as_bytes();
    if b.len() > w {
        return Err(bad(
            path,
            format!("line {lineno}: a value of {} bits for a {w}-bit signal", b.len()),
        ));
    }
    for k in 0..w {
        // A shorter vector is extended with 0 (VCD's left extension of 0/1 values).
        let c = if k < b.len() { b[b.len() - 1 - k] } else { b'0' };
        let v = match c {
            b'0' => false,
            b'1' => true,
            _ => {
                return Err(bad(
                    path,
                    format!(
                        "line {lineno}: value `{}` (x or z) for {}: a two-state simulation (Verilator) is expected",
                        c as char, vars[s.vars[0]].name
                    ),
                ))
            }
        };
        if !s.known {
            s.value[k] = v;
            s.rise[k] = t;
        } else if v != s.value[k] {
            if v {
                s.rise[k] = t;
            } else {
                s.high[k] += t - s.rise[k];
            }
            s.toggles[k] += 1;
            s.value[k] = v;
        }
    }
    s.known = true;
    Ok(())
}

/// Reads the VCD `path` and returns the activity of every bit of the module instance
/// `top` (the first scope of that name: a Verilator dump has `TOP.<top>`), per rising edge
/// of its `clock` input. A missing, unreadable or malformed file, a file without the scope
/// `top` or its `clock`, and `x`/`z` values (a two-state simulation is expected) are errors
/// naming the file.
pub fn read_vcd(path: &Path, top: &str) -> Result<VcdActivity, QorError> {
    let f = File::open(path).map_err(|e| bad(path, format!("cannot read it: {e}")))?;
    let mut lines = BufReader::with_capacity(1 << 20, f).lines();
    let mut scopes: Vec<String> = Vec::new();
    let mut top_depth: Option<usize> = None;
    let mut seen_top = false;
    let mut vars: Vec<Var> = Vec::new();
    let mut ids: BTreeMap<String, Signal> = BTreeMap::new();
    let mut header_done = false;
    let mut lineno = 0usize;
    // Header: scopes and variables, up to `$enddefinitions`.
    for line in lines.by_ref() {
        lineno += 1;
        let line = line.map_err(|e| bad(path, format!("cannot read line {lineno}: {e}")))?;
        let t: Vec<&str> = line.split_whitespace().collect();
        match t.first().copied() {
            Some("$scope") => {
                let name = t.get(2).copied().unwrap_or("").to_string();
                scopes.push(name.clone());
                if top_depth.is_none() && !seen_top && name == top {
                    top_depth = Some(scopes.len());
                    seen_top = true;
                }
            }
            Some("$upscope") => {
                if top_depth == Some(scopes.len()) {
                    top_depth = None;
                }
                scopes.pop();
            }
            Some("$var") => {
                let Some(d) = top_depth else { continue };
                // $var <type> <width> <id> <name> [range] $end
                if t.len() < 6 {
                    return Err(bad(path, format!("line {lineno}: malformed $var: {line}")));
                }
                let width: usize = t[2]
                    .parse()
                    .ok()
                    .filter(|w| (1..=MAX_WIDTH).contains(w))
                    .ok_or_else(|| bad(path, format!("line {lineno}: bad width (1..={MAX_WIDTH}) in {line}")))?;
                let id = t[3].to_string();
                let mut name = t[4].to_string();
                let mut range = t.get(5).filter(|r| r.starts_with('[')).map(|r| r.to_string());
                // `name[7:0]` written without a space.
                if range.is_none() {
                    if let Some(i) = name.find('[') {
                        range = Some(name[i..].to_string());
                        name.truncate(i);
                    }
                }
                // Verilator writes array elements as `mem(3)`: the netlist's `mem[3]`.
                if let (Some(o), true) = (name.find('('), name.ends_with(')')) {
                    name = format!("{}[{}]", &name[..o], &name[o + 1..name.len() - 1]);
                }
                let (lsb, down, ranged) = match range.as_deref() {
                    Some(r) => {
                        let inner = r.trim_start_matches('[').trim_end_matches(']');
                        let (a, b) = inner.split_once(':').unwrap_or((inner, inner));
                        // Bit indices are Verilog integers (32-bit).
                        let (a, b): (i64, i64) = match (a.trim().parse::<i32>(), b.trim().parse::<i32>()) {
                            (Ok(a), Ok(b)) => (a.into(), b.into()),
                            _ => return Err(bad(path, format!("line {lineno}: bad range in {line}"))),
                        };
                        (b, a >= b, true)
                    }
                    None => (0, true, false),
                };
                let mut full: Vec<&str> = scopes[d..].iter().map(String::as_str).collect();
                full.push(&name);
                vars.push(Var {
                    name: full.join("."),
                    lsb,
                    down,
                    width,
                    ranged,
                });
                let s = ids.entry(id).or_insert_with(|| Signal {
                    vars: Vec::new(),
                    value: vec![false; width],
                    toggles: vec![0; width],
                    high: vec![0; width],
                    rise: vec![0; width],
                    known: false,
                });
                if s.value.len() != width {
                    return Err(bad(
                        path,
                        format!("line {lineno}: identifier {} declared with two widths", t[3]),
                    ));
                }
                s.vars.push(vars.len() - 1);
            }
            Some("$enddefinitions") => {
                header_done = true;
                break;
            }
            _ => {}
        }
    }
    if !header_done {
        return Err(bad(path, "not a VCD file (no `$enddefinitions`)"));
    }
    if !seen_top {
        return Err(bad(
            path,
            format!("the VCD has no scope `{top}`: it is not a waveform of configuration {top}"),
        ));
    }
    let clock_id = ids
        .iter()
        .find(|(_, s)| s.vars.iter().any(|&v| vars[v].name == "clock"))
        .map(|(id, _)| id.clone())
        .ok_or_else(|| bad(path, format!("the VCD has no `clock` in scope `{top}`")))?;
    let (mut t_first, mut t_now): (Option<u64>, u64) = (None, 0);
    let mut cycles = 0u64;
    let mut clock: Option<bool> = None;
    for line in lines {
        lineno += 1;
        let line = line.map_err(|e| bad(path, format!("cannot read line {lineno}: {e}")))?;
        let l = line.trim();
        if l.is_empty() || l.starts_with('$') {
            continue;
        }
        let first = &l[..l.chars().next().map_or(0, char::len_utf8)];
        let rest = &l[first.len()..];
        if first != "#" && t_first.is_none() {
            // A value before the first time stamp is at time 0.
            t_first = Some(0);
        }
        match first {
            "#" => {
                let t: u64 = rest
                    .trim()
                    .parse()
                    .map_err(|_| bad(path, format!("line {lineno}: bad time `{l}`")))?;
                if t < t_now {
                    return Err(bad(path, format!("line {lineno}: time goes back ({t} after {t_now})")));
                }
                t_now = t;
                t_first.get_or_insert(t);
            }
            "b" | "B" => {
                let (bits, id) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| bad(path, format!("line {lineno}: malformed vector change `{l}`")))?;
                apply(path, &vars, &mut ids, id.trim(), bits, t_now, lineno)?;
            }
            "0" | "1" | "x" | "X" | "z" | "Z" => {
                let id = rest.trim();
                if id == clock_id {
                    let h = first == "1";
                    if h && clock == Some(false) {
                        cycles += 1;
                    }
                    clock = Some(h);
                }
                apply(path, &vars, &mut ids, id, first, t_now, lineno)?;
            }
            "r" | "R" => {
                return Err(bad(
                    path,
                    format!("line {lineno}: real values are not supported: `{l}`"),
                ))
            }
            _ => return Err(bad(path, format!("line {lineno}: not a VCD value change: `{l}`"))),
        }
    }
    let t0 = t_first.ok_or_else(|| bad(path, "the VCD has no value changes"))?;
    if cycles == 0 || t_now <= t0 {
        return Err(bad(
            path,
            format!("the VCD's `clock` of `{top}` never rises: no cycles to measure"),
        ));
    }
    let span = (t_now - t0) as f64;
    let mut bits = BTreeMap::new();
    for s in ids.values_mut() {
        for k in 0..s.value.len() {
            if s.value[k] {
                s.high[k] += t_now - s.rise[k];
            }
        }
        for &vi in &s.vars {
            let v = &vars[vi];
            for k in 0..v.width.min(s.value.len()) {
                let a = BitActivity {
                    activity: s.toggles[k] as f64 / cycles as f64,
                    duty: s.high[k] as f64 / span,
                };
                if !v.ranged {
                    bits.insert(v.name.clone(), a);
                    continue;
                }
                let idx = if v.down { v.lsb + k as i64 } else { v.lsb - k as i64 };
                bits.insert(format!("{}[{idx}]", v.name), a);
                if v.width == 1 {
                    bits.insert(v.name.clone(), a);
                }
            }
        }
    }
    Ok(VcdActivity {
        path: path.to_path_buf(),
        cycles,
        bits,
    })
}

/// How much of the netlist the recorded activity reached (read back from OpenSTA).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActivityCoverage {
    /// What was recorded: the file and what produced it.
    pub source: String,
    /// Clock cycles of the recording.
    pub cycles: u64,
    /// Data input ports (bits, the clock aside) annotated with their recorded activity.
    pub inputs: u64,
    /// Data input ports of the netlist; the others keep the default input activity.
    pub inputs_total: u64,
    /// Flip-flop output pins annotated with their register bit's recorded activity.
    pub registers: u64,
    /// Flip-flop output pins of the netlist; the others keep the activity OpenSTA propagates.
    pub registers_total: u64,
    /// Load pins of the annotated flip-flop outputs, annotated with the same activity.
    pub loads: u64,
    /// Up to 20 names of each kind left unannotated, for the log.
    pub unmatched: Vec<String>,
}

/// Whether `name` can be written between braces in Tcl as it is.
fn tcl_plain(name: &str) -> bool {
    !name.contains(['{', '}', '\\']) && !name.chars().any(char::is_whitespace)
}

/// A flip-flop output pin as Yosys's `dfflibmap` connected it: library cell, pin, and
/// whether the pin carries the complement of the mapped register (`.QN(~Q)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisterPin {
    /// Library cell.
    pub cell: String,
    /// Output pin.
    pub pin: String,
    /// The pin carries the register's complement.
    pub inverted: bool,
}

/// The register output pins of every cell `dfflibmap` used, from its mapping lines in the
/// Yosys log (`\sky130_fd_sc_hd__dfxtp_1 _DFF_P_ (.CLK( C), .D( D), .Q( Q));`, ASAP7's
/// `.QN(~Q)`): the tool's own statement of each pin's polarity.
pub fn register_pins(yosys_log: &str) -> Vec<RegisterPin> {
    let mut out: Vec<RegisterPin> = Vec::new();
    for line in yosys_log.lines() {
        let t = line.trim();
        let Some(rest) = t.strip_prefix('\\') else { continue };
        let Some((cell, conns)) = rest.split_once(' ') else {
            continue;
        };
        if !conns.trim_start().starts_with("_DFF") || !conns.trim_end().ends_with(");") {
            continue;
        }
        for c in conns.split('.').skip(1) {
            // `QN(~Q), ` or `Q( Q));`
            let Some((pin, sig)) = c.split_once('(') else { continue };
            let sig = sig.split(')').next().unwrap_or("").trim();
            let inverted = match sig {
                "Q" => false,
                "~Q" => true,
                _ => continue,
            };
            let r = RegisterPin {
                cell: cell.to_string(),
                pin: pin.trim().to_string(),
                inverted,
            };
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    out
}

/// The OpenSTA (Tcl) script that annotates a linked netlist with `act`: every data input
/// port found in it (`sta::set_power_input_port_activity`), and every flip-flop output pin
/// of `regs` whose instance is `<bit>_reg` with `<bit>` in it (the complemented duty for an
/// inverted pin), with the load pins of its net; then it prints the counts after the marker
/// `@@ activity`. A version without the commands prints `@@ activity-unsupported` and
/// exits.
pub fn annotation_tcl(act: &VcdActivity, regs: &[RegisterPin]) -> Result<String, QorError> {
    let mut t = String::new();
    t.push_str(
        "# Recorded switching activity (generated by sop rtl qor; docs/qor.md).\n\
         if {[info commands ::sta::set_power_pin_activity] eq \"\" || [info commands ::sta::set_power_input_port_activity] eq \"\"} {\n\
         \x20 puts \"@@ activity-unsupported\"\n\
         \x20 exit 0\n\
         }\n\
         array set sop_act {\n",
    );
    for (name, a) in &act.bits {
        if !tcl_plain(name) {
            return Err(bad(
                &act.path,
                format!("signal name `{name}` cannot be matched (braces, backslash or space)"),
            ));
        }
        let _ = writeln!(t, "  {{{name}}} {{{:.6e} {:.6}}}", a.activity, a.duty);
    }
    t.push_str("}\narray set sop_inv {\n");
    for r in regs {
        if tcl_plain(&r.cell) && tcl_plain(&r.pin) {
            let _ = writeln!(t, "  {{{}/{}}} {}", r.cell, r.pin, u8::from(r.inverted));
        }
    }
    t.push_str(
        "}\n\
         set sop_in 0; set sop_in_all 0; set sop_reg 0; set sop_reg_all 0; set sop_loads 0\n\
         set sop_miss {}\n\
         foreach port [all_inputs] {\n\
         \x20 set n [get_full_name $port]\n\
         \x20 if {$n eq \"clock\"} continue\n\
         \x20 incr sop_in_all\n\
         \x20 if {[info exists sop_act($n)]} {\n\
         \x20   lassign $sop_act($n) a d\n\
         \x20   sta::set_power_input_port_activity $port $a $d\n\
         \x20   incr sop_in\n\
         \x20 } else { lappend sop_miss \"input $n\" }\n\
         }\n\
         foreach pin [all_registers -output_pins] {\n\
         \x20 incr sop_reg_all\n\
         \x20 set inst [$pin instance]\n\
         \x20 set iname [get_full_name $inst]\n\
         \x20 set key \"[get_name [$inst cell]]/[get_name [$pin port]]\"\n\
         \x20 set rtl [string range $iname 0 end-4]\n\
         \x20 if {[string range $iname end-3 end] ne \"_reg\" || ![info exists sop_inv($key)] || ![info exists sop_act($rtl)]} {\n\
         \x20   lappend sop_miss \"register [get_full_name $pin]\"\n\
         \x20   continue\n\
         \x20 }\n\
         \x20 lassign $sop_act($rtl) a d\n\
         \x20 if {$sop_inv($key)} { set d [expr {1.0 - $d}] }\n\
         \x20 sta::set_power_pin_activity $pin $a $d\n\
         \x20 incr sop_reg\n\
         \x20 # This OpenSTA does not carry a driver pin's user activity to its loads.\n\
         \x20 foreach net [get_nets -of_objects $pin] {\n\
         \x20   foreach l [get_pins -of_objects $net] {\n\
         \x20     if {[get_property $l direction] eq \"input\"} {\n\
         \x20       sta::set_power_pin_activity $l $a $d\n\
         \x20       incr sop_loads\n\
         \x20     }\n\
         \x20   }\n\
         \x20 }\n\
         }\n\
         puts \"@@ activity\"\n\
         puts \"inputs $sop_in $sop_in_all\"\n\
         puts \"registers $sop_reg $sop_reg_all\"\n\
         puts \"loads $sop_loads\"\n\
         foreach m [lrange $sop_miss 0 39] { puts \"unmatched $m\" }\n",
    );
    Ok(t)
}

/// Reads the `@@ activity` section of the OpenSTA log (see [`annotation_tcl`]).
pub fn coverage(section: &str, act: &VcdActivity, source: &str) -> Result<ActivityCoverage, QorError> {
    let pair = |key: &str| -> Option<(u64, u64)> {
        let l = section.lines().find_map(|l| l.strip_prefix(key))?;
        let mut it = l.split_whitespace().map(|x| x.parse::<u64>().ok());
        Some((it.next()??, it.next().flatten().unwrap_or(0)))
    };
    let missing = |what: &str| QorError::Unparsed {
        tool: "sta".into(),
        what: format!("the `{what}` count of the activity annotation"),
        output: crate::parse::excerpt(section),
    };
    let (inputs, inputs_total) = pair("inputs ").ok_or_else(|| missing("inputs"))?;
    let (registers, registers_total) = pair("registers ").ok_or_else(|| missing("registers"))?;
    let (loads, _) = pair("loads ").ok_or_else(|| missing("loads"))?;
    Ok(ActivityCoverage {
        source: source.to_string(),
        cycles: act.cycles,
        inputs,
        inputs_total,
        registers,
        registers_total,
        loads,
        unmatched: section
            .lines()
            .filter_map(|l| l.strip_prefix("unmatched "))
            .map(str::to_string)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two cycles per 20 time units (rising edge at +5), as the co-simulation's tracer writes.
    const VCD: &str = "$timescale 1ps $end
$scope module TOP $end
 $var wire 1 ! clock $end
 $scope module top $end
  $var wire 1 ! clock $end
  $var wire 4 \" code [3:0] $end
  $scope module lanes$0 $end
   $scope module lut $end
    $var wire 2 # mem(1) [1:0] $end
   $upscope $end
  $upscope $end
 $upscope $end
$upscope $end
$enddefinitions $end
#0
$dumpvars
0!
b0000 \"
b11 #
$end
#5
1!
#10
0!
b0101 \"
#15
1!
b10 #
#20
0!
b0100 \"
#25
1!
#30
0!
#35
1!
#40
0!
";

    fn vcd(text: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.vcd");
        std::fs::write(&p, text).unwrap();
        (d, p)
    }

    #[test]
    fn toggle_rates_and_duty() {
        let (_d, p) = vcd(VCD);
        let a = read_vcd(&p, "top").unwrap();
        assert_eq!(a.cycles, 4);
        // code[0]: 0 -> 1 at 10, 1 -> 0 at 20: 2 transitions, high 10 of 40.
        let c0 = a.bits["code[0]"];
        assert_eq!((c0.activity, c0.duty), (0.5, 0.25));
        // code[2]: rises at 10, stays: 1 transition, high 30 of 40.
        let c2 = a.bits["code[2]"];
        assert_eq!((c2.activity, c2.duty), (0.25, 0.75));
        assert_eq!(a.bits["code[3]"].activity, 0.0);
        // The array element `mem(1)` is the netlist's `mem[1]`; bit 0 falls at 15.
        let m = a.bits["lanes$0.lut.mem[1][0]"];
        assert_eq!((m.activity, m.duty), (0.25, 15.0 / 40.0));
        assert_eq!(a.bits["lanes$0.lut.mem[1][1]"].duty, 1.0);
        // The clock: 4 rises, 8 transitions.
        assert_eq!(a.bits["clock"].activity, 2.0);
        // Nothing outside the top scope.
        assert!(a.bits.keys().all(|k| !k.starts_with("TOP")));
    }

    #[test]
    fn bad_files_are_named() {
        let e = read_vcd(Path::new("/no/such/file.vcd"), "top").unwrap_err().to_string();
        assert!(e.contains("/no/such/file.vcd") && e.contains("cannot read"), "{e}");
        let (_d, p) = vcd("hello\n");
        let e = read_vcd(&p, "top").unwrap_err().to_string();
        assert!(e.contains("a.vcd") && e.contains("not a VCD"), "{e}");
        let (_d, p) = vcd(VCD);
        let e = read_vcd(&p, "other_top").unwrap_err().to_string();
        assert!(e.contains("no scope `other_top`"), "{e}");
        let (_d, p) = vcd(&VCD.replace("b0100 \"", "b01x0 \""));
        let e = read_vcd(&p, "top").unwrap_err().to_string();
        assert!(e.contains("two-state") && e.contains("code"), "{e}");
        let (_d, p) = vcd(&VCD.replace("#20\n", "#2\n"));
        let e = read_vcd(&p, "top").unwrap_err().to_string();
        assert!(e.contains("time goes back"), "{e}");
        let (_d, p) = vcd(&VCD.replace("wire 4 \" code", "wire 99999999999 \" code"));
        let e = read_vcd(&p, "top").unwrap_err().to_string();
        assert!(e.contains("bad width"), "{e}");
        let (_d, p) = vcd(&VCD.replace("#40\n", "#40\n\u{e9}t\u{e9}\n"));
        let e = read_vcd(&p, "top").unwrap_err().to_string();
        assert!(e.contains("not a VCD value change"), "{e}");
        let no_clock = VCD.replace("  $var wire 1 ! clock $end\n  $var wire 4", "  $var wire 4");
        let (_d, p) = vcd(&no_clock);
        let e = read_vcd(&p, "top").unwrap_err().to_string();
        assert!(e.contains("no `clock`"), "{e}");
    }

    #[test]
    fn register_pin_polarity_from_the_yosys_log() {
        let log = "  cell mapping:\n    \\sky130_fd_sc_hd__dfxtp_1 _DFF_P_ (.CLK( C), .D( D), .Q( Q));\n\
                   \x20   \\DFFHQNx1_ASAP7_75t_R _DFF_P_ (.CLK( C), .D( D), .QN(~Q));\n\
                   \x20   \\sky130_fd_sc_hd__dfxtp_1 _DFF_P_ (.CLK( C), .D( D), .Q( Q));\n\
                   \x20 mapped 656 $_DFF_P_ cells to \\sky130_fd_sc_hd__dfxtp_1 cells.\n";
        let r = register_pins(log);
        assert_eq!(
            r,
            [
                RegisterPin {
                    cell: "sky130_fd_sc_hd__dfxtp_1".into(),
                    pin: "Q".into(),
                    inverted: false
                },
                RegisterPin {
                    cell: "DFFHQNx1_ASAP7_75t_R".into(),
                    pin: "QN".into(),
                    inverted: true
                },
            ]
        );
        assert!(register_pins("no mapping here\n").is_empty());
    }

    #[test]
    fn coverage_is_read_back() {
        let (_d, p) = vcd(VCD);
        let a = read_vcd(&p, "top").unwrap();
        let c = coverage(
            "inputs 4 5\nregisters 10 12\nloads 30\nunmatched register x_reg/Q\n",
            &a,
            "test",
        )
        .unwrap();
        assert_eq!(
            (c.inputs, c.inputs_total, c.registers, c.registers_total, c.loads),
            (4, 5, 10, 12, 30)
        );
        assert_eq!(c.unmatched, ["register x_reg/Q"]);
        assert!(coverage("Error: something\n", &a, "test").is_err());
    }
}
