//! Progress bars for long reads (replay, timeline, bundle): drawn on stderr, and
//! only when a person is watching: hidden with `--json` or when stdout is not a
//! terminal (a script or a pipe reads the output).

use crate::cli::Ctx;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A bar over a known number of entries; does nothing when hidden.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar for `total` entries, labelled `what`.
    pub fn new(ctx: &Ctx, total: u64, what: &str) -> Self {
        if ctx.json || !std::io::stdout().is_terminal() || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg}: [{bar:40}] {pos}/{len} entries, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_owned());
        Progress(Some(bar))
    }

    /// Entries done so far.
    pub fn set(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.set_position(n);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
