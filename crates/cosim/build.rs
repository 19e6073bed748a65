//! Build script of `sop-cosim`: Verilates every committed `rtl-out/*.v`, compiles the
//! generated C++ with a generated `extern "C"` shim (`cpp/shim.cpp.in`), links it, and writes
//! the Rust model table (`$OUT_DIR/models.rs`, included by `src/ffi.rs`). See `docs/cosim.md`.
//!
//! Per configuration (top module = file stem) it builds two variants: `plain` (the fast model)
//! and `traced` (`--trace`, for VCD waveforms; compiled at -O1, about 30% slower per cycle even
//! when not dumping, which is why it is separate). For the mutation check it also builds a
//! deliberately broken copy of two configurations: the FP16-LUT lane (general packer;
//! `mutant` and `mutant_traced`) and the main HIF lane (normalized packer; `mutant` only), each
//! with the packer's round-to-nearest-even tie rule replaced by ties-away-from-zero, by a
//! checked text substitution (the build fails when the pattern is not found).
//!
//! Environment: `SOP_VERILATOR` (the verilator executable; default `verilator` on `PATH`),
//! `SOP_COSIM_RTL_DIR` (the Verilog directory; default `rtl-out/` of the workspace).

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Configuration whose Verilog is mutated for the mutation check (the general packer; real
/// weights round normal results there, so a real layer catches it).
const MUTANT_CONFIG: &str = "sop_c4_fp16lut_ue4m4_fp16";
/// HIF configuration mutated the same way (the normalized packer, whose rounding only
/// subnormal results reach: the exhaustive sweep catches it). Untraced only.
const HIF_MUTANT_CONFIG: &str = "sop_c4_hif8_ue4m4_fp16";
/// The packer's rounding rule (round half to even: round up when the guard bit is set and
/// either a lower bit (sticky) or the kept LSB is 1).
const MUTANT_FROM: &str = "ru = qg[32'h0] && (sticky || qg[32'h1]);";
/// The mutation: round up whenever the guard bit is set, also on a tie (ties away from zero
/// on the magnitude).
const MUTANT_TO: &str = "ru = qg[32'h0];";
/// The engine, mutated twice (two variants): in its sparse correction unit and in its mode
/// decode.
const ENGINE_MUTANT_CONFIG: &str = "sop_engine_hif8_fp16";
/// The correction unit's round-to-nearest-even rule (guard bit, and sticky or LSB) ...
const CORR_FROM: &str = "ru = ((m & gmask) != zero_w) && (((m & smask) != zero_w) || ((sig & one_w) != zero_w));";
/// ... made ties-away-from-zero (`Mutant` variant of the engine).
const CORR_TO: &str = "ru = ((m & gmask) != zero_w);";
/// The mode decode's rebase of an E4M3 scale exponent into the engine's UE4M4 domain ...
const MODE_FROM: &str = "exp = sde$exp + rebase;";
/// ... forgotten: E4M3 and SE4M3 scales come out half as large (`ModeMutant` variant).
const MODE_TO: &str = "exp = sde$exp;";

/// The HIF dot-product tile, mutated (`Mutant` variant): bit 3 of the block scale's
/// significand is ignored in the block-scale multiply of every row ...
const TILE_FROM: &str = "sf_c = mv << sh3;";
/// ... (its shifted term dropped).
const TILE_TO: &str = "sf_c = zero_v;";
/// The conventional tile, mutated: the drain shifts bank 2 into its own place instead of
/// taking bank 3's, so bank 3's partial sum is lost (and bank 2 counted twice) ...
const CONV_TILE_FROM: &str = "q$2$d = q$3$q;";
/// ... in every row.
const CONV_TILE_TO: &str = "q$2$d = q$2$q;";

/// The mutation of a tile by its file stem: `(from, to, what)`.
fn tile_mutation(name: &str) -> (&'static str, &'static str, &'static str) {
    if name.starts_with("sop_tile_fp16lut_") {
        (CONV_TILE_FROM, CONV_TILE_TO, "the conventional tile's bank drain")
    } else {
        (TILE_FROM, TILE_TO, "the tile's block-scale multiply")
    }
}

/// One deliberate mutation of a configuration's Verilog, by a checked text substitution.
struct Mutation {
    config: &'static str,
    variants: &'static [Variant],
    from: &'static str,
    to: &'static str,
    what: &'static str,
}

/// Every mutant the build makes (each must find its configuration and its pattern).
const MUTATIONS: &[Mutation] = &[
    Mutation {
        config: MUTANT_CONFIG,
        variants: &[Variant::Mutant, Variant::MutantTraced],
        from: MUTANT_FROM,
        to: MUTANT_TO,
        what: "the packer's round-to-nearest-even tie rule",
    },
    Mutation {
        config: HIF_MUTANT_CONFIG,
        variants: &[Variant::Mutant],
        from: MUTANT_FROM,
        to: MUTANT_TO,
        what: "the packer's round-to-nearest-even tie rule",
    },
    Mutation {
        config: ENGINE_MUTANT_CONFIG,
        variants: &[Variant::Mutant],
        from: CORR_FROM,
        to: CORR_TO,
        what: "the sparse correction unit's round-to-nearest-even tie rule",
    },
    Mutation {
        config: ENGINE_MUTANT_CONFIG,
        variants: &[Variant::ModeMutant],
        from: MODE_FROM,
        to: MODE_TO,
        what: "the engine's rebase of E4M3 scale exponents",
    },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    Plain,
    Traced,
    Mutant,
    MutantTraced,
    ModeMutant,
}

impl Variant {
    fn tag(self) -> &'static str {
        match self {
            Variant::Plain => "p",
            Variant::Traced => "t",
            Variant::Mutant => "m",
            Variant::MutantTraced => "mt",
            Variant::ModeMutant => "mm",
        }
    }
    fn rust(self) -> &'static str {
        match self {
            Variant::Plain => "Variant::Plain",
            Variant::Traced => "Variant::Traced",
            Variant::Mutant => "Variant::Mutant",
            Variant::MutantTraced => "Variant::MutantTraced",
            Variant::ModeMutant => "Variant::ModeMutant",
        }
    }
    fn traced(self) -> bool {
        matches!(self, Variant::Traced | Variant::MutantTraced)
    }
}

/// One top-level port, from the `VL_IN*` / `VL_OUT*` lines of the generated header.
struct Port {
    name: String,
    input: bool,
    bits: u32,
    bytes: u32,
}

/// The parameters stated in the Verilog header comment.
struct Header {
    lanes: u32,
    engine: bool,
    code_bits: u32,
    block: u32,
    scale: String,
    lut: String,
    output: String,
}

struct Built {
    name: String,
    /// A dot-product tile (`sop_tile_*`, table `TILES`) rather than a lane top (`MODELS`).
    tile: bool,
    variant: Variant,
    source: PathBuf,
    header: Header,
    ports: Vec<Port>,
    files: Vec<PathBuf>,
}

/// Opt-in RTL code coverage (`scripts/rtl-coverage`): with `SOP_COSIM_RTL_COVERAGE=1` the plain
/// models are Verilated with `--coverage-line --coverage-toggle` and compiled with
/// `VM_COVERAGE=1`; each model then writes its counters when it is freed (into
/// `$SOP_RTL_COVERAGE_DIR`, see `cpp/shim.cpp.in`). Off by default: the counters slow every
/// cycle down.
const RTL_COVERAGE_ENV: &str = "SOP_COSIM_RTL_COVERAGE";

/// Whether this build collects RTL code coverage ([`RTL_COVERAGE_ENV`]).
fn rtl_coverage() -> bool {
    env::var(RTL_COVERAGE_ENV).is_ok_and(|v| v == "1")
}

/// Stops the build with `msg` (shown by cargo under "--- stderr").
fn fail(msg: String) -> ! {
    eprintln!("error: sop-cosim build: {msg}");
    std::process::exit(1);
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=SOP_VERILATOR");
    println!("cargo:rerun-if-env-changed=SOP_COSIM_RTL_DIR");
    println!("cargo:rerun-if-env-changed={RTL_COVERAGE_ENV}");
    println!("cargo:rerun-if-changed=cpp/shim.cpp.in");
    let rtl_dir = env::var_os("SOP_COSIM_RTL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../rtl-out"));
    let rtl_dir = rtl_dir.canonicalize().unwrap_or_else(|e| {
        fail(format!(
            "the Verilog directory {} is not readable: {e} (set SOP_COSIM_RTL_DIR or emit the RTL with `sop rtl emit --out rtl-out/`)",
            rtl_dir.display()
        ))
    });
    println!("cargo:rerun-if-changed={}", rtl_dir.display());

    let verilator = env::var("SOP_VERILATOR").unwrap_or_else(|_| "verilator".into());
    let version = Command::new(&verilator).arg("--version").output();
    let version = match version {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => fail(format!(
            "`{verilator} --version` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => fail(format!(
            "the tool `verilator` is required to build the co-simulation but `{verilator}` could not be run ({e}). \
             Install Verilator 5 (`scripts/install-deps`, or `apt-get install verilator`), or point SOP_VERILATOR at the executable."
        )),
    };
    let root = Command::new(&verilator)
        .args(["--getenv", "VERILATOR_ROOT"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|| fail(format!("`{verilator} --getenv VERILATOR_ROOT` failed")));
    let include = root.join("include");
    if !include.join("verilated.cpp").is_file() {
        fail(format!(
            "Verilator's runtime sources are not in {} (incomplete Verilator installation?)",
            include.display()
        ));
    }

    let vlt = rtl_dir.join("verilator.vlt");
    let vlt = vlt.is_file().then_some(vlt);
    if let Some(v) = &vlt {
        println!("cargo:rerun-if-changed={}", v.display());
    }
    let mut sources: Vec<PathBuf> = fs::read_dir(&rtl_dir)
        .unwrap_or_else(|e| fail(format!("cannot list {}: {e}", rtl_dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "v"))
        .collect();
    sources.sort();
    if sources.is_empty() {
        fail(format!("no Verilog files (*.v) in {}", rtl_dir.display()));
    }

    let template = fs::read_to_string(manifest.join("cpp/shim.cpp.in"))
        .unwrap_or_else(|e| fail(format!("cannot read cpp/shim.cpp.in: {e}")));
    let mut built = Vec::new();
    let mut mutants_done = 0;
    for src in &sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let name = src.file_stem().unwrap().to_string_lossy().to_string();
        if !is_ident(&name) {
            fail(format!(
                "{}: the file stem must be the top module's name (a plain identifier)",
                src.display()
            ));
        }
        let text = fs::read_to_string(src).unwrap_or_else(|e| fail(format!("cannot read {}: {e}", src.display())));
        let tile = name.starts_with("sop_tile_");
        let header = if tile {
            parse_tile_header(src, &text)
        } else {
            parse_header(src, &text)
        };
        for variant in [Variant::Plain, Variant::Traced] {
            built.push(verilate(
                &verilator,
                &out,
                vlt.as_deref(),
                src,
                &name,
                variant,
                &header,
                &template,
            ));
        }
        if tile {
            let (from, to, what) = tile_mutation(&name);
            if !text.contains(from) {
                fail(format!(
                    "mutation check: the pattern `{from}` ({what}) is not in {}; update the mutation in crates/cosim/build.rs",
                    src.display()
                ));
            }
            let dir = out.join(format!("mutant_{name}"));
            fs::create_dir_all(&dir).unwrap();
            let msrc = dir.join(format!("{name}.v"));
            fs::write(&msrc, text.replace(from, to)).unwrap();
            let mut b = verilate(
                &verilator,
                &out,
                vlt.as_deref(),
                &msrc,
                &name,
                Variant::Mutant,
                &header,
                &template,
            );
            b.source = src.clone();
            built.push(b);
            continue;
        }
        for (k, m) in MUTATIONS.iter().enumerate().filter(|(_, m)| m.config == name) {
            if !text.contains(m.from) {
                fail(format!(
                    "mutation check: the pattern `{}` ({}) is not in {}; update the mutation in crates/cosim/build.rs to the new code",
                    m.from,
                    m.what,
                    src.display()
                ));
            }
            let mutated = text.replace(m.from, m.to);
            let dir = out.join(format!("mutant{k}"));
            fs::create_dir_all(&dir).unwrap();
            let msrc = dir.join(format!("{name}.v"));
            fs::write(&msrc, mutated).unwrap();
            for &variant in m.variants {
                let mut b = verilate(
                    &verilator,
                    &out,
                    vlt.as_deref(),
                    &msrc,
                    &name,
                    variant,
                    &header,
                    &template,
                );
                b.source = src.clone();
                built.push(b);
            }
            mutants_done += 1;
        }
    }
    if mutants_done != MUTATIONS.len() {
        let names: Vec<&str> = MUTATIONS.iter().map(|m| m.config).collect();
        fail(format!(
            "mutation check: configurations {} (which are mutated) need Verilog files in {}",
            names.join(", "),
            rtl_dir.display()
        ));
    }

    compile(&include, &built);
    write_rust(&out, &built, &version, &rtl_dir);
}

fn is_ident(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The first word after `key =` in the file's leading comment lines.
fn header_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .take_while(|l| l.starts_with("//") || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("//"))
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.split_whitespace().next().unwrap_or("").to_string())
        })
}

/// The header of a tile (`//   kind = tile`, `//   rows = R`): lanes = rows, the rest unused.
fn parse_tile_header(src: &Path, text: &str) -> Header {
    let get = |key: &str| header_value(text, key);
    if get("kind").as_deref() != Some("tile") {
        fail(format!(
            "{}: a sop_tile_* file must state `kind = tile` in its header",
            src.display()
        ));
    }
    let rows = get("rows")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fail(format!("{}: the header does not state `rows = N`", src.display())));
    Header {
        lanes: rows,
        engine: true,
        code_bits: 6,
        block: 0,
        scale: String::new(),
        lut: String::new(),
        output: String::new(),
    }
}

/// Reads the parameter lines of the emitted header comment (`//   lanes     = 4`, ...).
fn parse_header(src: &Path, text: &str) -> Header {
    let get = |key: &str| -> String {
        header_value(text, key).unwrap_or_else(|| {
            fail(format!(
                "{}: the header comment does not state `{key} = ...` (was the file written by `sop rtl emit`?)",
                src.display()
            ))
        })
    };
    let num = |key: &str| -> u32 {
        let v = get(key);
        v.parse()
            .unwrap_or_else(|_| fail(format!("{}: header `{key} = {v}` is not a number", src.display())))
    };
    // Optional: only engines state it.
    let engine = text
        .lines()
        .take_while(|l| l.starts_with("//") || l.trim().is_empty())
        .filter_map(|l| l.strip_prefix("//"))
        .filter_map(|l| l.split_once('='))
        .any(|(k, v)| k.trim() == "engine" && v.split_whitespace().next() == Some("yes"));
    Header {
        lanes: num("lanes"),
        engine,
        code_bits: num("code_bits"),
        block: num("block"),
        scale: get("scale"),
        lut: get("lut"),
        output: get("output"),
    }
}

#[allow(clippy::too_many_arguments)]
fn verilate(
    verilator: &str,
    out: &Path,
    vlt: Option<&Path>,
    src: &Path,
    name: &str,
    variant: Variant,
    header: &Header,
    template: &str,
) -> Built {
    let tag = variant.tag();
    let class = format!("V{tag}_{name}");
    let mdir = out.join(format!("vl_{tag}_{name}"));
    let _ = fs::remove_dir_all(&mdir);
    fs::create_dir_all(&mdir).unwrap();
    let mut cmd = Command::new(verilator);
    cmd.args(["--cc", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert"]);
    if variant.traced() {
        // Verilator traces unpacked arrays of at most 32 elements by default: the 64-entry
        // tables of the 6-bit lanes and the engines need more (the recorded activity of
        // `sop rtl qor --activity` annotates every table flip-flop).
        cmd.args(["--trace", "--trace-max-array", "256"]);
    }
    if variant == Variant::Plain && rtl_coverage() {
        cmd.args(["--coverage-line", "--coverage-toggle"]);
    }
    cmd.arg("--top-module").arg(name);
    cmd.arg("--prefix").arg(&class);
    cmd.arg("--Mdir").arg(&mdir);
    if let Some(v) = vlt {
        cmd.arg(v);
    }
    cmd.arg(src);
    let o = cmd
        .output()
        .unwrap_or_else(|e| fail(format!("cannot run `{verilator}`: {e}")));
    if !o.status.success() {
        fail(format!(
            "verilator failed on {} ({}):\n{}{}",
            src.display(),
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let hdr = fs::read_to_string(mdir.join(format!("{class}.h")))
        .unwrap_or_else(|e| fail(format!("verilator wrote no {class}.h: {e}")));
    let ports = parse_ports(&hdr, &class);
    let sym = format!("sopvl_{tag}_{name}");
    let tile = name.starts_with("sop_tile_");
    let shim = if tile {
        generate_tile_shim(template, &class, &sym, variant.traced(), &ports, header.lanes)
    } else {
        generate_shim(template, &class, &sym, variant.traced(), &ports, header)
    };
    let shim_path = mdir.join(format!("{sym}_shim.cpp"));
    fs::write(&shim_path, shim).unwrap();
    let mut files: Vec<PathBuf> = fs::read_dir(&mdir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cpp"))
        .collect();
    files.sort();
    Built {
        name: name.to_string(),
        tile,
        variant,
        source: src.to_path_buf(),
        header: Header {
            lanes: header.lanes,
            engine: header.engine,
            code_bits: header.code_bits,
            block: header.block,
            scale: header.scale.clone(),
            lut: header.lut.clone(),
            output: header.output.clone(),
        },
        ports,
        files,
    }
}

/// Ports from the `VL_IN8(&clock,0,0);` / `VL_OUT16(&data_out_0,15,0);` lines.
fn parse_ports(hdr: &str, class: &str) -> Vec<Port> {
    let mut ports = Vec::new();
    for line in hdr.lines() {
        let l = line.trim();
        let (input, rest) = if let Some(r) = l.strip_prefix("VL_IN") {
            (true, r)
        } else if let Some(r) = l.strip_prefix("VL_OUT") {
            (false, r)
        } else {
            continue;
        };
        let (kind, args) = rest
            .split_once('(')
            .unwrap_or_else(|| fail(format!("{class}.h: cannot parse `{l}`")));
        let bytes = match kind {
            "8" => 1,
            "16" => 2,
            "" => 4,
            "64" => 8,
            _ => fail(format!(
                "{class}.h: port line `{l}` has a width the shim does not support (wide ports)"
            )),
        };
        let args = args.trim_end_matches(';').trim_end_matches(')');
        let parts: Vec<&str> = args.split(',').map(str::trim).collect();
        if parts.len() != 3 {
            fail(format!("{class}.h: cannot parse `{l}`"));
        }
        let pname = parts[0].trim_start_matches('&').to_string();
        let msb: u32 = parts[1].parse().unwrap_or_else(|_| fail(format!("{class}.h: `{l}`")));
        let lsb: u32 = parts[2].parse().unwrap_or_else(|_| fail(format!("{class}.h: `{l}`")));
        ports.push(Port {
            name: pname,
            input,
            bits: msb - lsb + 1,
            bytes,
        });
    }
    if ports.is_empty() {
        fail(format!("{class}.h: no VL_IN/VL_OUT port lines found"));
    }
    ports
}

fn generate_shim(template: &str, class: &str, sym: &str, traced: bool, ports: &[Port], h: &Header) -> String {
    let mut ptrs = String::new();
    for p in ports {
        writeln!(ptrs, "        static_cast<void*>(&t->{}),", p.name).unwrap();
    }
    let has = |n: &str| ports.iter().any(|p| p.name == n);
    let code_mask = (1u32 << h.code_bits) - 1;
    let mut lanes = String::new();
    let mut outs = String::new();
    let mut stream = String::new();
    for i in 0..h.lanes {
        let names = [
            format!("valid_in_{i}"),
            format!("block_start_{i}"),
            format!("scale_{i}"),
            format!("sel_{i}"),
            format!("code_{i}"),
        ];
        if !names.iter().all(|n| has(n)) || !has(&format!("data_out_{i}")) {
            fail(format!(
                "{class}: lane {i} ports (valid_in_{i}, block_start_{i}, scale_{i}, sel_{i}, code_{i}, data_out_{i}) not all present"
            ));
        }
        writeln!(lanes, "        x = x * 1664525u + 1013904223u;").unwrap();
        writeln!(lanes, "        t->valid_in_{i} = 1;").unwrap();
        writeln!(lanes, "        t->block_start_{i} = bs;").unwrap();
        writeln!(lanes, "        t->scale_{i} = static_cast<uint8_t>(x >> 24);").unwrap();
        writeln!(lanes, "        t->sel_{i} = (x >> 23) & 1u;").unwrap();
        writeln!(lanes, "        t->code_{i} = (x >> 8) & {code_mask}u;").unwrap();
        writeln!(outs, "        acc += t->data_out_{i};").unwrap();
        let o = 4 * i;
        writeln!(stream, "        t->valid_in_{i} = buf[{o}] & 1u;").unwrap();
        writeln!(stream, "        t->block_start_{i} = (buf[{o}] >> 1) & 1u;").unwrap();
        writeln!(stream, "        t->sel_{i} = (buf[{o}] >> 2) & 1u;").unwrap();
        writeln!(stream, "        t->scale_{i} = buf[{}];", o + 1).unwrap();
        writeln!(stream, "        t->code_{i} = buf[{}] & {code_mask}u;", o + 2).unwrap();
    }
    template
        .replace("@CLASS@", class)
        .replace("@SYM@", sym)
        .replace("@TRACE@", if traced { "1" } else { "0" })
        .replace("@PORT_PTRS@", ptrs.trim_end())
        .replace("@RAW_LANES@", lanes.trim_end())
        .replace("@RAW_OUTS@", outs.trim_end())
        .replace("@STREAM_LANES@", stream.trim_end())
        .replace("@LANES@", &h.lanes.to_string())
}

/// The shim of a tile: the same template; its benchmark loops clock the tile idle (the Rust
/// side does not bind them), its checksum reads row 0's result.
fn generate_tile_shim(template: &str, class: &str, sym: &str, traced: bool, ports: &[Port], rows: u32) -> String {
    let mut ptrs = String::new();
    for p in ports {
        writeln!(ptrs, "        static_cast<void*>(&t->{}),", p.name).unwrap();
    }
    if !ports.iter().any(|p| p.name == "acc_0") {
        fail(format!("{class}: tile port acc_0 not present"));
    }
    template
        .replace("@CLASS@", class)
        .replace("@SYM@", sym)
        .replace("@TRACE@", if traced { "1" } else { "0" })
        .replace("@PORT_PTRS@", ptrs.trim_end())
        .replace("@RAW_LANES@", "        (void)bs;")
        .replace("@RAW_OUTS@", "        acc += t->acc_0;")
        .replace("@STREAM_LANES@", "")
        .replace("@LANES@", &rows.to_string())
}

fn base_build(include: &Path) -> cc::Build {
    let mut b = cc::Build::new();
    b.cpp(true)
        .std("gnu++17")
        .include(include)
        .include(include.join("vltstd"))
        .define("VM_COVERAGE", if rtl_coverage() { "1" } else { "0" })
        .define("VM_SC", "0")
        .define("VL_IGNORE_UNKNOWN_ARCH", None)
        .flag_if_supported("-faligned-new")
        .flag_if_supported("-fcf-protection=none")
        .flag_if_supported("-fno-stack-protector")
        .flag("-w")
        .warnings(false)
        .extra_warnings(false)
        .cargo_metadata(false)
        .debug(false);
    b
}

fn compile(include: &Path, built: &[Built]) {
    // Verilator's runtime once for every model; the fast models (plain and mutant) at -O2;
    // the traced ones at -O1 (they only replay a stretch around a mismatch, so compile time
    // matters more than speed). The three libraries compile in parallel threads (cc shares
    // cargo's jobserver between them).
    let mut rt = base_build(include);
    rt.define("VM_TRACE", "1").opt_level(2);
    for f in ["verilated.cpp", "verilated_threads.cpp", "verilated_vcd_c.cpp"] {
        rt.file(include.join(f));
    }
    if rtl_coverage() {
        rt.file(include.join("verilated_cov.cpp"));
    }
    let mut builds = vec![("sopvl_runtime", rt)];
    for (lib, traced, opt) in [("sopvl_models", false, 2), ("sopvl_traced", true, 1)] {
        let mut b = base_build(include);
        b.define("VM_TRACE", if traced { "1" } else { "0" }).opt_level(opt);
        for m in built.iter().filter(|m| m.variant.traced() == traced) {
            let mdir = m.files[0].parent().unwrap();
            b.include(mdir);
            for f in &m.files {
                b.file(f);
            }
        }
        builds.push((lib, b));
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = builds
            .iter()
            .map(|(lib, b)| {
                s.spawn(move || {
                    let t = std::time::Instant::now();
                    let r = b.try_compile(lib);
                    (lib, r, t.elapsed())
                })
            })
            .collect();
        for h in handles {
            let (lib, r, dt) = h.join().expect("compile thread");
            if let Err(e) = r {
                fail(format!("compiling {lib} failed: {e}"));
            }
            eprintln!("compiled {lib} in {dt:?}");
        }
    });
    // Link order: the models before the runtime they call, then the C++ runtime.
    let out = env::var("OUT_DIR").unwrap();
    println!("cargo:rustc-link-search=native={out}");
    for lib in ["sopvl_models", "sopvl_traced", "sopvl_runtime"] {
        println!("cargo:rustc-link-lib=static={lib}");
    }
    println!("cargo:rustc-link-lib=stdc++");
    println!("cargo:rustc-link-lib=atomic");
    println!("cargo:rustc-link-lib=pthread");
}

fn write_rust(out: &Path, built: &[Built], version: &str, rtl_dir: &Path) {
    let mut s = String::new();
    writeln!(
        s,
        "// Generated by crates/cosim/build.rs: the Verilated models linked into this crate."
    )
    .unwrap();
    writeln!(s, "/// `verilator --version` of the build.").unwrap();
    writeln!(s, "pub const VERILATOR_VERSION: &str = {version:?};").unwrap();
    writeln!(s, "/// The Verilog directory the models were built from.").unwrap();
    writeln!(s, "pub const RTL_DIR: &str = {:?};", rtl_dir.display().to_string()).unwrap();
    writeln!(
        s,
        "/// The configuration whose packer is mutated in the `Mutant` variants."
    )
    .unwrap();
    writeln!(s, "pub const MUTANT_CONFIG: &str = {MUTANT_CONFIG:?};").unwrap();
    writeln!(
        s,
        "/// The HIF configuration whose (normalized) packer is mutated the same way (`Mutant` only)."
    )
    .unwrap();
    writeln!(s, "pub const HIF_MUTANT_CONFIG: &str = {HIF_MUTANT_CONFIG:?};").unwrap();
    writeln!(
        s,
        "/// The engine whose correction unit (`Mutant`) and mode decode (`ModeMutant`) are mutated."
    )
    .unwrap();
    writeln!(s, "pub const ENGINE_MUTANT_CONFIG: &str = {ENGINE_MUTANT_CONFIG:?};").unwrap();
    writeln!(
        s,
        "/// The correction-unit mutation: (original Verilog text, replacement)."
    )
    .unwrap();
    writeln!(
        s,
        "pub const CORR_MUTATION: (&str, &str) = ({CORR_FROM:?}, {CORR_TO:?});"
    )
    .unwrap();
    writeln!(s, "/// The mode-decode mutation: (original Verilog text, replacement).").unwrap();
    writeln!(
        s,
        "pub const MODE_MUTATION: (&str, &str) = ({MODE_FROM:?}, {MODE_TO:?});"
    )
    .unwrap();
    writeln!(s, "/// The mutation: (original Verilog text, replacement).").unwrap();
    writeln!(
        s,
        "pub const MUTATION: (&str, &str) = ({MUTANT_FROM:?}, {MUTANT_TO:?});"
    )
    .unwrap();
    writeln!(s, "/// The HIF tile mutation: (original Verilog text, replacement).").unwrap();
    writeln!(
        s,
        "pub const TILE_MUTATION: (&str, &str) = ({TILE_FROM:?}, {TILE_TO:?});"
    )
    .unwrap();
    writeln!(
        s,
        "/// The conventional tile mutation: (original Verilog text, replacement)."
    )
    .unwrap();
    writeln!(
        s,
        "pub const CONV_TILE_MUTATION: (&str, &str) = ({CONV_TILE_FROM:?}, {CONV_TILE_TO:?});"
    )
    .unwrap();
    writeln!(s, "extern \"C\" {{").unwrap();
    for m in built {
        let sym = format!("sopvl_{}_{}", m.variant.tag(), m.name);
        writeln!(s, "    fn {sym}_new() -> *mut c_void;").unwrap();
        writeln!(s, "    fn {sym}_free(h: *mut c_void);").unwrap();
        writeln!(
            s,
            "    fn {sym}_ports(h: *mut c_void, out: *mut *mut c_void, n: u32) -> u32;"
        )
        .unwrap();
        writeln!(s, "    fn {sym}_tick(h: *mut c_void);").unwrap();
        if !m.tile {
            writeln!(s, "    fn {sym}_raw(h: *mut c_void, cycles: u64) -> u64;").unwrap();
            writeln!(
                s,
                "    fn {sym}_raw_stream(h: *mut c_void, buf: *const u8, cycles: u64) -> u64;"
            )
            .unwrap();
        }
        writeln!(
            s,
            "    fn {sym}_vcd_open(h: *mut c_void, path: *const c_char, first_cycle: u64) -> c_int;"
        )
        .unwrap();
        writeln!(s, "    fn {sym}_vcd_dump(h: *mut c_void, on: c_int);").unwrap();
        if !m.tile {
            writeln!(s, "    fn {sym}_vcd_cycle(h: *mut c_void, cycle: u64);").unwrap();
        }
        writeln!(s, "    fn {sym}_vcd_close(h: *mut c_void);").unwrap();
    }
    writeln!(s, "}}").unwrap();
    writeln!(s, "/// Every linked dot-product tile variant.").unwrap();
    writeln!(s, "pub(crate) static TILES: &[TileDesc] = &[").unwrap();
    for m in built.iter().filter(|m| m.tile) {
        let sym = format!("sopvl_{}_{}", m.variant.tag(), m.name);
        writeln!(s, "    TileDesc {{").unwrap();
        writeln!(s, "        name: {:?},", m.name).unwrap();
        writeln!(s, "        variant: {},", m.variant.rust()).unwrap();
        writeln!(s, "        rows: {},", m.header.lanes).unwrap();
        writeln!(s, "        ports: &[").unwrap();
        for p in &m.ports {
            writeln!(
                s,
                "            PortDesc {{ name: {:?}, input: {}, bits: {}, bytes: {} }},",
                p.name, p.input, p.bits, p.bytes
            )
            .unwrap();
        }
        writeln!(s, "        ],").unwrap();
        writeln!(s, "        fns: TileFns {{").unwrap();
        for f in ["new", "free", "ports", "tick", "vcd_open", "vcd_dump", "vcd_close"] {
            writeln!(s, "            {f}: {sym}_{f},").unwrap();
        }
        writeln!(s, "        }},").unwrap();
        writeln!(s, "    }},").unwrap();
    }
    writeln!(s, "];").unwrap();
    writeln!(s, "/// Every linked model variant.").unwrap();
    writeln!(s, "pub(crate) static MODELS: &[ModelDesc] = &[").unwrap();
    for m in built.iter().filter(|m| !m.tile) {
        let sym = format!("sopvl_{}_{}", m.variant.tag(), m.name);
        let h = &m.header;
        writeln!(s, "    ModelDesc {{").unwrap();
        writeln!(s, "        name: {:?},", m.name).unwrap();
        writeln!(s, "        variant: {},", m.variant.rust()).unwrap();
        writeln!(s, "        source: {:?},", m.source.display().to_string()).unwrap();
        writeln!(
            s,
            "        header: HeaderParams {{ lanes: {}, engine: {}, code_bits: {}, block: {}, scale: {:?}, lut: {:?}, output: {:?} }},",
            h.lanes, h.engine, h.code_bits, h.block, h.scale, h.lut, h.output
        )
        .unwrap();
        writeln!(s, "        ports: &[").unwrap();
        for p in &m.ports {
            writeln!(
                s,
                "            PortDesc {{ name: {:?}, input: {}, bits: {}, bytes: {} }},",
                p.name, p.input, p.bits, p.bytes
            )
            .unwrap();
        }
        writeln!(s, "        ],").unwrap();
        writeln!(s, "        fns: ModelFns {{").unwrap();
        for f in [
            "new",
            "free",
            "ports",
            "tick",
            "raw",
            "raw_stream",
            "vcd_open",
            "vcd_dump",
            "vcd_cycle",
            "vcd_close",
        ] {
            writeln!(s, "            {f}: {sym}_{f},").unwrap();
        }
        writeln!(s, "        }},").unwrap();
        writeln!(s, "    }},").unwrap();
    }
    writeln!(s, "];").unwrap();
    fs::write(out.join("models.rs"), s).unwrap();
}
