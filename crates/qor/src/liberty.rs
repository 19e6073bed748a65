//! Liberty standard-cell libraries for the standard-cell flows: read (gzip-compressed or
//! plain), merge the files of one library into one (Yosys 0.23's `abc -liberty` takes a
//! single file), mark the conventionally excluded cells `dont_use : true;` (Yosys 0.23's
//! `abc` has no `-dont_use` option), and list every cell's area and kind.
//!
//! The scanner knows just enough Liberty to do that: comments, quoted strings, `name :
//! value;` attributes and `name (args) { ... }` groups. It never rewrites the cells it
//! keeps; a merged file is the first file's header, the header groups of the others that
//! the first lacks (ASAP7's files name their table templates differently), and every cell.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::tools::GZIP;
use crate::QorError;

/// What the flows need to know about one cell.
#[derive(Clone, Debug, PartialEq)]
pub struct CellInfo {
    /// Cell area in the library's area unit (um^2 for SKY130 and ASAP7).
    pub area: f64,
    /// The cell holds state (it has an `ff`, `latch` or `statetable` group).
    pub sequential: bool,
    /// The cell is marked `dont_use : true` (by the library or by [`prepare`]).
    pub dont_use: bool,
    /// Names of its signal pins (`pin (...)` groups).
    pub pins: Vec<String>,
}

/// A prepared library: one Liberty file in a work directory and its cells.
#[derive(Clone, Debug)]
pub struct Library {
    /// Name in the first source's `library (...)` header.
    pub name: String,
    /// The prepared (decompressed, merged, `dont_use`-marked) file.
    pub path: PathBuf,
    /// The files it was made from, in order.
    pub sources: Vec<PathBuf>,
    /// The library's `time_unit` attribute as written (`"1ns"`, `"1ps"`).
    pub time_unit: String,
    /// Every cell by name.
    pub cells: BTreeMap<String, CellInfo>,
}

impl Library {
    /// Checks that `cell` exists, is usable and has every pin of `pins`; the error names
    /// the library's files and what is missing.
    pub fn require_cell(&self, cell: &str, pins: &[&str], role: &str) -> Result<(), QorError> {
        let problem = match self.cells.get(cell) {
            None => Some(format!("has no cell `{cell}` ({role})")),
            Some(c) if c.dont_use => Some(format!("marks `{cell}` ({role}) dont_use")),
            Some(c) => pins
                .iter()
                .find(|p| !c.pins.iter().any(|q| q == *p))
                .map(|p| format!("cell `{cell}` ({role}) has no pin `{p}`")),
        };
        match problem {
            None => Ok(()),
            Some(p) => Err(self.error(&format!(
                "the library {p}; the flow needs it (give a library of the same PDK with --liberty)"
            ))),
        }
    }

    /// Checks that the library has a usable flip-flop (a cell with an `ff` group), without
    /// which Yosys's `dfflibmap` cannot map the registers.
    pub fn require_flip_flop(&self) -> Result<(), QorError> {
        if self.cells.values().any(|c| c.sequential && !c.dont_use) {
            Ok(())
        } else {
            Err(self.error("the library has no usable sequential cell (no `ff` group): the registers cannot be mapped"))
        }
    }

    fn error(&self, problem: &str) -> QorError {
        QorError::Liberty {
            path: self.sources.first().cloned().unwrap_or_default(),
            problem: problem.to_string(),
        }
    }
}

/// Whether `name` matches the glob `pattern` (`*` matches any run of characters, every
/// other character itself), as the dont-use lists of OpenROAD-flow-scripts are written.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

/// Reads a Liberty file, through `gzip -dc` when its name ends in `.gz`.
fn read_source(path: &Path) -> Result<String, QorError> {
    let liberty_err = |problem: String| QorError::Liberty {
        path: path.to_path_buf(),
        problem,
    };
    if !path.is_file() {
        return Err(liberty_err(
            "no such Liberty file (the standard-cell flows read them from ../shared/pdk/ beside the \
             repository, or from the files given with --liberty)"
                .into(),
        ));
    }
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let out = Command::new(GZIP.program)
            .arg("-dc")
            .arg(path)
            .stdin(Stdio::null())
            .output()
            .map_err(|_| QorError::MissingTool {
                tool: GZIP.program.into(),
                install: GZIP.install.into(),
            })?;
        if !out.status.success() {
            return Err(liberty_err(format!(
                "cannot decompress it: gzip says {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        out.stdout
    } else {
        fs::read(path).map_err(|e| liberty_err(format!("cannot read it: {e}")))?
    };
    String::from_utf8(bytes).map_err(|_| liberty_err("not a Liberty file (not text)".into()))
}

/// One top-level statement of a library body: its byte range and its head (the text
/// before `{` or `;`, trimmed).
struct Item {
    start: usize,
    end: usize,
    head: String,
    group: bool,
}

/// Splits a Liberty text into the part up to and including `library (...) {`, the
/// top-level items of the library body, and the library's name.
fn split_library(text: &str) -> Result<(usize, Vec<Item>, String), String> {
    let b = text.as_bytes();
    let mut k = 0;
    let mut body = None;
    // Find `library (name) {` outside comments.
    while k < b.len() {
        if b[k..].starts_with(b"/*") {
            k = find(b, k + 2, b"*/").ok_or("unterminated comment")? + 2;
            continue;
        }
        if b[k..].starts_with(b"library") && (k == 0 || !b[k - 1].is_ascii_alphanumeric()) {
            let open = text[k..].find('{').ok_or("no `{` after `library`")? + k;
            let head = &text[k + "library".len()..open];
            let name = head
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')')
                .trim()
                .trim_matches('"')
                .to_string();
            body = Some((open + 1, name));
            break;
        }
        k += 1;
    }
    let (start, name) = body.ok_or("no `library (...) {` group: not a Liberty file")?;
    let mut items = Vec::new();
    let (mut depth, mut k, mut item_start) = (0usize, start, start);
    let mut head_end: Option<usize> = None;
    while k < b.len() {
        match b[k] {
            b'/' if b[k..].starts_with(b"/*") => {
                k = find(b, k + 2, b"*/").ok_or("unterminated comment")? + 2;
                continue;
            }
            b'"' => {
                k = find(b, k + 1, b"\"").ok_or("unterminated string")? + 1;
                continue;
            }
            b'\\' => {
                // A line continuation or an escaped character: skip both.
                k += 2;
                continue;
            }
            b'{' => {
                if depth == 0 {
                    head_end = Some(k);
                }
                depth += 1;
            }
            b'}' => {
                if depth == 0 {
                    return Ok((start, items, name));
                }
                depth -= 1;
                if depth == 0 {
                    let he = head_end.take().unwrap_or(k);
                    items.push(Item {
                        start: item_start,
                        end: k + 1,
                        head: text[item_start..he].trim().to_string(),
                        group: true,
                    });
                    item_start = k + 1;
                }
            }
            b';' if depth == 0 => {
                items.push(Item {
                    start: item_start,
                    end: k + 1,
                    head: text[item_start..k].trim().to_string(),
                    group: false,
                });
                item_start = k + 1;
            }
            _ => {}
        }
        k += 1;
    }
    Err("the `library` group is not closed (truncated file?)".into())
}

fn find(b: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(pat.len())
        .position(|w| w == pat)
        .map(|p| p + from)
}

/// The name of a `cell (NAME)` head, without quotes; `None` for other heads.
fn cell_name(head: &str) -> Option<String> {
    let rest = head.strip_prefix("cell")?.trim_start();
    let inner = rest.strip_prefix('(')?.trim_end().strip_suffix(')')?;
    Some(inner.trim().trim_matches('"').to_string())
}

/// Area, kind, pins and `dont_use` of one cell group's text.
fn cell_info(text: &str) -> CellInfo {
    let mut info = CellInfo {
        area: 0.0,
        sequential: false,
        dont_use: false,
        pins: Vec::new(),
    };
    // Only the cell's own level (depth 1 inside the cell) matters.
    let b = text.as_bytes();
    let (mut depth, mut k, mut stmt) = (0usize, 0usize, 0usize);
    while k < b.len() {
        match b[k] {
            b'/' if b[k..].starts_with(b"/*") => {
                k = find(b, k + 2, b"*/").map_or(b.len(), |e| e + 2);
                continue;
            }
            b'"' => {
                k = find(b, k + 1, b"\"").map_or(b.len(), |e| e + 1);
                continue;
            }
            b'{' => {
                if depth == 1 {
                    let head = text[stmt..k].trim();
                    let kw = head.split(|c: char| c == '(' || c.is_whitespace()).next().unwrap_or("");
                    match kw {
                        "ff" | "latch" | "statetable" | "ff_bank" | "latch_bank" => info.sequential = true,
                        "pin" => {
                            if let Some(p) = head.split_once('(').and_then(|(_, r)| r.rsplit_once(')')) {
                                info.pins.push(p.0.trim().trim_matches('"').to_string());
                            }
                        }
                        _ => {}
                    }
                }
                depth += 1;
                stmt = k + 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                stmt = k + 1;
            }
            b';' => {
                if depth == 1 {
                    if let Some((key, value)) = text[stmt..k].split_once(':') {
                        let value = value.trim().trim_matches('"');
                        match key.trim() {
                            "area" => info.area = value.parse().unwrap_or(0.0),
                            "dont_use" => info.dont_use = value == "true",
                            _ => {}
                        }
                    }
                }
                stmt = k + 1;
            }
            _ => {}
        }
        k += 1;
    }
    info
}

/// Reads `sources` (one library split over one or more files, `.gz` or plain), merges
/// them, marks every cell whose name matches a glob of `dont_use` as `dont_use : true;`,
/// and writes the result to `out`. The error names the file that is missing, unreadable or
/// not Liberty.
pub fn prepare(sources: &[PathBuf], dont_use: &[&str], out: &Path) -> Result<Library, QorError> {
    let first = sources
        .first()
        .ok_or_else(|| QorError::Usage("no Liberty file given".into()))?;
    let mut merged = String::new();
    let mut name = String::new();
    let mut time_unit = String::new();
    let mut heads: BTreeSet<String> = BTreeSet::new();
    let mut header_extra = String::new();
    let mut cells_text = String::new();
    let mut cells: BTreeMap<String, CellInfo> = BTreeMap::new();
    for (i, path) in sources.iter().enumerate() {
        let text = read_source(path)?;
        let (body, items, lib_name) = split_library(&text).map_err(|p| QorError::Liberty {
            path: path.clone(),
            problem: format!("not a readable Liberty file: {p}"),
        })?;
        if i == 0 {
            name = lib_name;
            merged.push_str(&text[..body]);
        }
        for it in &items {
            let t = &text[it.start..it.end];
            if let Some(cell) = cell_name(&it.head).filter(|_| it.group) {
                if cells.contains_key(&cell) {
                    continue;
                }
                let mut info = cell_info(t);
                let mark = !info.dont_use && dont_use.iter().any(|p| glob_match(p, &cell));
                if mark {
                    // Insert the attribute right after the cell's opening brace.
                    let brace = t.find('{').expect("a group has a brace") + 1;
                    cells_text.push_str(&t[..brace]);
                    cells_text.push_str("\n    dont_use : true;");
                    cells_text.push_str(&t[brace..]);
                    info.dont_use = true;
                } else {
                    cells_text.push_str(t);
                }
                cells.insert(cell, info);
            } else if heads.insert(it.head.clone()) {
                if !it.group && it.head.starts_with("time_unit") {
                    time_unit = it
                        .head
                        .split_once(':')
                        .map(|(_, v)| v.trim().trim_matches('"').to_string())
                        .unwrap_or_default();
                }
                // The first file's header stays in order; the others add what it lacks.
                if i == 0 {
                    merged.push_str(t);
                } else {
                    header_extra.push_str(t);
                }
            }
        }
    }
    if cells.is_empty() {
        return Err(QorError::Liberty {
            path: first.clone(),
            problem: "the library has no cells".into(),
        });
    }
    merged.push_str(&header_extra);
    merged.push_str(&cells_text);
    merged.push_str("\n}\n");
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent).map_err(|e| QorError::Io {
            path: parent.to_path_buf(),
            source: e,
        })?;
    }
    fs::write(out, merged).map_err(|e| QorError::Io {
        path: out.to_path_buf(),
        source: e,
    })?;
    Ok(Library {
        name,
        path: out.to_path_buf(),
        sources: sources.to_vec(),
        time_unit,
        cells,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIB_A: &str = r#"/* licence */
library (demo_a) {
  time_unit : "1ps";
  lu_table_template (t_a) { variable_1 : x; }
  cell (INVx1_ASAP7_75t_R) {
    area : 0.044;
    pin (A) { direction : input; }
    pin (Y) { direction : output; function : "!A"; }
  }
  cell ("BUFx1p5_ASAP7_75t_R") { area : 0.05; pin (A) { } pin (Y) { } }
}
"#;
    const LIB_B: &str = r#"library (demo_b) {
  time_unit : "1ps";
  lu_table_template (t_b) { variable_1 : y; }
  cell (DFFHQNx1_ASAP7_75t_R) {
    area : 0.2916;
    ff (IQN, IQNN) { clocked_on : "CLK"; next_state : "!D"; }
    pin (CLK) { } pin (D) { } pin (QN) { function : "IQN"; }
  }
  cell (INVx1_ASAP7_75t_R) { area : 9; }
}
"#;

    #[test]
    fn globs() {
        assert!(glob_match("*x1p*_ASAP7*", "BUFx1p5_ASAP7_75t_R"));
        assert!(!glob_match("*x1p*_ASAP7*", "BUFx2_ASAP7_75t_R"));
        assert!(glob_match("SDF*", "SDFHx1_ASAP7_75t_R"));
        assert!(glob_match(
            "sky130_fd_sc_hd__lpflow_*",
            "sky130_fd_sc_hd__lpflow_inputiso0n_1"
        ));
        assert!(glob_match("a", "a") && !glob_match("a", "ab") && glob_match("*", ""));
    }

    #[test]
    fn merge_marks_and_lists_cells() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.lib"), dir.path().join("b.lib"));
        fs::write(&a, LIB_A).unwrap();
        fs::write(&b, LIB_B).unwrap();
        let out = dir.path().join("m.lib");
        let lib = prepare(&[a, b], &["*x1p*_ASAP7*"], &out).unwrap();
        assert_eq!(lib.name, "demo_a");
        assert_eq!(lib.time_unit, "1ps");
        assert_eq!(lib.cells.len(), 3);
        // The first definition of a cell wins.
        assert_eq!(lib.cells["INVx1_ASAP7_75t_R"].area, 0.044);
        assert_eq!(lib.cells["INVx1_ASAP7_75t_R"].pins, ["A", "Y"]);
        assert!(lib.cells["BUFx1p5_ASAP7_75t_R"].dont_use);
        let ff = &lib.cells["DFFHQNx1_ASAP7_75t_R"];
        assert!(ff.sequential && !ff.dont_use && ff.area == 0.2916);
        let text = fs::read_to_string(&out).unwrap();
        assert!(text.contains("t_a") && text.contains("t_b"), "{text}");
        assert_eq!(text.matches("cell (").count() + text.matches("cell(").count(), 3);
        assert!(text.contains("dont_use : true;"));
        // The merged file is itself one readable library.
        let again = prepare(std::slice::from_ref(&out), &[], &dir.path().join("again.lib")).unwrap();
        assert_eq!(again.cells, lib.cells);
        lib.require_flip_flop().unwrap();
        lib.require_cell("INVx1_ASAP7_75t_R", &["A", "Y"], "inverter").unwrap();
        let e = lib
            .require_cell("BUFx2_ASAP7_75t_R", &["A"], "driver")
            .unwrap_err()
            .to_string();
        assert!(e.contains("BUFx2_ASAP7_75t_R") && e.contains("a.lib"), "{e}");
        let e = lib
            .require_cell("INVx1_ASAP7_75t_R", &["Z"], "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no pin `Z`"), "{e}");
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.lib.gz");
        let e = prepare(&[missing], &[], &dir.path().join("o.lib"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.lib.gz") && e.contains("no such Liberty file"), "{e}");
        let junk = dir.path().join("junk.lib");
        fs::write(&junk, "hello world\n").unwrap();
        let e = prepare(&[junk], &[], &dir.path().join("o.lib"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("junk.lib") && e.contains("not a readable Liberty file"),
            "{e}"
        );
        let cut = dir.path().join("cut.lib");
        fs::write(&cut, &LIB_A[..LIB_A.len() / 2]).unwrap();
        let e = prepare(&[cut], &[], &dir.path().join("o.lib")).unwrap_err().to_string();
        assert!(e.contains("cut.lib") && e.contains("not closed"), "{e}");
        let gz = dir.path().join("bad.lib.gz");
        fs::write(&gz, "not gzip").unwrap();
        let e = prepare(&[gz], &[], &dir.path().join("o.lib")).unwrap_err().to_string();
        assert!(e.contains("bad.lib.gz") && e.contains("decompress"), "{e}");
        let no_ff = dir.path().join("a.lib");
        fs::write(&no_ff, LIB_A).unwrap();
        let lib = prepare(&[no_ff], &[], &dir.path().join("o.lib")).unwrap();
        let e = lib.require_flip_flop().unwrap_err().to_string();
        assert!(e.contains("a.lib") && e.contains("sequential"), "{e}");
    }
}
