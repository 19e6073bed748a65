//! Progress of the long commands (`sop eval`, `quantize`, `cosim`, `rtl qor`) on stderr.
//!
//! On a terminal: a bar with the step count, elapsed time, rate and ETA, and the current
//! step's description. Anywhere else (a log file, CI, a pipe, the tests): no bar, and each
//! step that asks for it becomes one `[i/n] description` line, so a log keeps everything a
//! terminal showed. Nothing here goes to stdout, whose content (tables, summaries) is the
//! same either way.

use std::fmt::Display;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress over a known number of steps.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
}

impl Progress {
    /// Progress over `total` steps of `unit` (e.g. `layers`): a bar when stderr is a
    /// terminal, lines otherwise.
    pub fn new(total: u64, unit: &str) -> Progress {
        if std::io::stderr().is_terminal() {
            Progress::bar(total, unit)
        } else {
            Progress::lines(total)
        }
    }

    /// Line mode regardless of the terminal.
    pub fn lines(total: u64) -> Progress {
        Progress {
            bar: None,
            total,
            done: 0,
        }
    }

    fn bar(total: u64, unit: &str) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let template = format!("{{bar:30}} {{pos}}/{{len}} {unit}  {{elapsed_precise}}, ETA {{eta}}  {{wide_msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bar: Some(bar),
            total,
            done: 0,
        }
    }

    /// Whether a bar is shown (stderr is a terminal).
    pub fn is_bar(&self) -> bool {
        self.bar.is_some()
    }

    /// Starts the next step, described by `msg`: the bar shows it; in line mode it is
    /// printed as `[i/n] msg` (`i` counting from 1).
    pub fn step(&mut self, msg: impl Display) {
        self.done += 1;
        match &self.bar {
            Some(b) => {
                b.set_position(self.done - 1);
                b.set_message(msg.to_string());
            }
            None => eprintln!("{}", self.line(&msg)),
        }
    }

    /// A step finished, described by `msg` on the bar (nothing in line mode: callers that
    /// log each finished step themselves use [`Progress::println`] for it).
    pub fn advance(&mut self, msg: impl Display) {
        self.done += 1;
        if let Some(b) = &self.bar {
            b.set_position(self.done);
            b.set_message(msg.to_string());
        }
    }

    /// Marks the current step finished (the bar advances; nothing in line mode).
    pub fn finish_step(&self) {
        if let Some(b) = &self.bar {
            b.set_position(self.done);
        }
    }

    /// A line that belongs in the log in both modes (printed above the bar on a terminal).
    pub fn println(&self, msg: impl Display) {
        match &self.bar {
            Some(b) => b.println(msg.to_string()),
            None => eprintln!("{msg}"),
        }
    }

    /// Runs `f` with the bar hidden, for writing to stdout on the same terminal.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }

    /// The line-mode text of the current step.
    pub fn line(&self, msg: &impl Display) -> String {
        format!("[{}/{}] {msg}", self.done, self.total)
    }

    /// Removes the bar (the lines printed above it stay).
    pub fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_mode_counts_from_one() {
        let mut p = Progress::lines(3);
        assert!(!p.is_bar());
        p.step("a");
        assert_eq!(p.line(&"x"), "[1/3] x");
        p.step("b");
        p.finish_step();
        assert_eq!(p.line(&"y"), "[2/3] y");
        p.finish();
    }

    #[test]
    fn bar_mode_tracks_the_position() {
        // A bar drawn nowhere: the position logic without a terminal.
        let mut p = Progress::bar(2, "layers");
        if let Some(b) = &p.bar {
            b.set_draw_target(ProgressDrawTarget::hidden());
        }
        p.step("first");
        assert_eq!(p.bar.as_ref().unwrap().position(), 0);
        p.finish_step();
        assert_eq!(p.bar.as_ref().unwrap().position(), 1);
        p.step("second");
        p.finish_step();
        assert_eq!(p.bar.as_ref().unwrap().position(), 2);
        assert_eq!(p.bar.as_ref().unwrap().message(), "second");
        p.finish();
        let mut p = Progress::bar(2, "rounds");
        if let Some(b) = &p.bar {
            b.set_draw_target(ProgressDrawTarget::hidden());
        }
        p.advance("round 1 done");
        assert_eq!(p.bar.as_ref().unwrap().position(), 1);
        assert_eq!(p.line(&"z"), "[1/2] z");
    }
}
