//! Progress on a terminal. When standard error is not a terminal (a nightly run, a log file),
//! nothing is drawn and commands print only their summary.

use std::io::IsTerminal;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether to draw progress: standard error is a terminal.
pub fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Counters an operation updates and a ticker shows.
#[derive(Default)]
pub struct Counters {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub uploaded: AtomicU64,
}

/// A progress line redrawn from a render function until dropped.
pub struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// A spinner with elapsed time and the rendered message.
    pub fn spinner(render: impl Fn() -> String + Send + 'static) -> Ticker {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .expect("valid template"),
        );
        Self::run(bar, move |b| b.set_message(render()))
    }

    /// A bar towards a known total of bytes; `done` reports bytes so far.
    pub fn bar(total: u64, done: impl Fn() -> u64 + Send + 'static) -> Ticker {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        Self::run(bar, move |b| b.set_position(done()))
    }

    /// A bar towards a known total of bytes, with a message (such as files done) beside it.
    pub fn bar_with_message(
        total: u64,
        done: impl Fn() -> u64 + Send + 'static,
        message: impl Fn() -> String + Send + 'static,
    ) -> Ticker {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template"),
        );
        Self::run(bar, move |b| {
            b.set_position(done());
            b.set_message(message());
        })
    }

    fn run(bar: ProgressBar, update: impl Fn(&ProgressBar) + Send + 'static) -> Ticker {
        let (tx, rx) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            loop {
                update(&bar);
                bar.tick();
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
            update(&bar);
            bar.finish_and_clear();
        });
        Ticker {
            stop: Some(tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
