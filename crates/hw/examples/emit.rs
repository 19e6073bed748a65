//! Regenerates the committed Verilog: `cargo run -p sop-hw --example emit -- [OUT_DIR]
//! [CONFIG.toml]` (default `rtl-out/`, the default configurations).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = std::path::PathBuf::from(args.first().map(String::as_str).unwrap_or("rtl-out"));
    let paths = match args.get(1) {
        Some(cfg) => sop_hw::config::load_configs(std::path::Path::new(cfg))?
            .iter()
            .map(|c| sop_hw::emit(c, &out))
            .collect::<Result<Vec<_>, _>>()?,
        None => sop_hw::emit_all(&out)?,
    };
    for p in paths {
        println!("{}", p.display());
    }
    Ok(())
}
