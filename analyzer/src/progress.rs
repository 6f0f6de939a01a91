//! Progress on stderr with indicatif, only when stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over input bytes, or nothing.
#[derive(Debug)]
pub struct Bar {
    pb: Option<ProgressBar>,
    counter: Arc<AtomicU64>,
}

impl Bar {
    /// A bar if `enabled` and stderr is a terminal.
    pub fn new(enabled: bool, total: u64, counter: Arc<AtomicU64>) -> Self {
        let pb = (enabled && std::io::stderr().is_terminal()).then(|| {
            let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})",
            ) {
                pb.set_style(style);
            }
            pb
        });
        Bar { pb, counter }
    }

    /// Updates the position from the shared counter.
    pub fn tick(&self) {
        if let Some(pb) = &self.pb {
            pb.set_position(self.counter.load(Ordering::Relaxed));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(pb) = &self.pb {
            pb.finish_and_clear();
        }
    }
}
