//! What a run covers: the linear layers matching `--layers`, the configurations (compiled,
//! or those of `--config`, filtered by `only`).

use sop_hw::LaneConfig;
use sop_model::Model;

use crate::ffi::{compiled_configs, Variant};
use crate::run::CosimOptions;
use crate::CosimError;

/// Selects the linear layers matching `pattern` (a regular expression, or a plain substring
/// when it is not a valid one), in model order.
pub fn select_layers(model: &Model, pattern: Option<&str>) -> Result<Vec<String>, CosimError> {
    let linear: Vec<String> = model.linear_layers().into_iter().map(|t| t.name).collect();
    if linear.is_empty() {
        return Err(CosimError::Config(format!(
            "{}: no linear (2-D weight) tensors",
            model.path().display()
        )));
    }
    let Some(p) = pattern else { return Ok(linear) };
    let m = LayerMatcher::new(p);
    let chosen: Vec<String> = linear.iter().filter(|n| m.is_match(n)).cloned().collect();
    if chosen.is_empty() {
        return Err(CosimError::Config(format!(
            "--layers '{p}' matches none of the {} linear layers of {}",
            linear.len(),
            model.path().display()
        )));
    }
    Ok(chosen)
}

/// A `--layers` pattern: a regular expression, or a plain substring when it is not a valid
/// one.
pub(crate) enum LayerMatcher<'a> {
    Regex(regex::Regex),
    Substring(&'a str),
}

impl<'a> LayerMatcher<'a> {
    pub(crate) fn new(p: &'a str) -> Self {
        match regex::Regex::new(p) {
            Ok(re) => LayerMatcher::Regex(re),
            Err(_) => LayerMatcher::Substring(p),
        }
    }

    pub(crate) fn is_match(&self, name: &str) -> bool {
        match self {
            LayerMatcher::Regex(re) => re.is_match(name),
            LayerMatcher::Substring(p) => name.contains(p),
        }
    }
}

/// The configurations to run: the compiled ones, or those of `opts.config` (each must be
/// compiled in with the same parameters), filtered by `opts.only`.
pub fn select_configs(opts: &CosimOptions) -> Result<Vec<LaneConfig>, CosimError> {
    let compiled = compiled_configs();
    let mut chosen = match &opts.config {
        None => compiled.clone(),
        Some(path) => {
            let wanted = sop_hw::config::load_configs(path)
                .map_err(|e| CosimError::Config(format!("--config {}: {e}", path.display())))?;
            let mut v = Vec::new();
            for w in wanted {
                match compiled.iter().find(|c| c.name == w.name) {
                    None => {
                        return Err(CosimError::NoModel {
                            name: w.name.clone(),
                            variant: Variant::Plain,
                            available: compiled.iter().map(|c| c.name.clone()).collect(),
                        })
                    }
                    Some(c) if *c != w => {
                        return Err(CosimError::Config(format!(
                            "{}: configuration '{}' ({}) differs from the compiled Verilog ({}); re-emit rtl-out/ and rebuild",
                            path.display(),
                            w.name,
                            w.summary(),
                            c.summary()
                        )))
                    }
                    Some(c) => v.push(c.clone()),
                }
            }
            v
        }
    };
    if !opts.only.is_empty() {
        for n in &opts.only {
            if !chosen.iter().any(|c| &c.name == n) {
                return Err(CosimError::NoModel {
                    name: n.clone(),
                    variant: Variant::Plain,
                    available: chosen.iter().map(|c| c.name.clone()).collect(),
                });
            }
        }
        chosen.retain(|c| opts.only.contains(&c.name));
    }
    if chosen.is_empty() {
        return Err(CosimError::Config("no configuration to run".into()));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files_must_match_the_compiled_verilog() {
        let dir = std::env::temp_dir().join(format!("sop-cosim-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = compiled_configs()[0].clone();
        let path = dir.join("c.toml");
        std::fs::write(&path, good.to_toml()).unwrap();
        let opts = CosimOptions {
            config: Some(path.clone()),
            ..CosimOptions::default()
        };
        assert_eq!(select_configs(&opts).unwrap(), vec![good.clone()]);
        let mut other = good.clone();
        other.lanes = 2;
        std::fs::write(&path, other.to_toml()).unwrap();
        let e = select_configs(&opts).unwrap_err().to_string();
        assert!(e.contains("differs from the compiled Verilog"), "{e}");
        let mut unknown = good;
        unknown.name = "not_compiled".into();
        std::fs::write(&path, unknown.to_toml()).unwrap();
        let e = select_configs(&opts).unwrap_err().to_string();
        assert!(
            e.contains("not_compiled") && e.contains("sop_c4_hif8_ue4m4_fp16"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let only = CosimOptions {
            only: vec!["nope".into()],
            ..CosimOptions::default()
        };
        assert!(select_configs(&only).is_err());
    }
}
