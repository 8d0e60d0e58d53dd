//! Progress of long steps: drawn on a terminal; off a terminal (a nightly run, a log file), a
//! plain line every minute.

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

/// How often a progress line is logged when standard error is not a terminal: every minute,
/// or every `FIRESAFE_PROGRESS_SECONDS` seconds.
pub fn log_every() -> Duration {
    std::env::var("FIRESAFE_PROGRESS_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(Duration::from_secs(60), Duration::from_secs_f64)
}

/// A progress line redrawn from a render function until dropped. On a terminal it is drawn with
/// indicatif; otherwise (a nightly run under systemd, a log file) one plain line is written every
/// [`log_every`], with no control characters, to the log when the daemon has one, else to
/// standard error.
pub struct Ticker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// A spinner with elapsed time and the rendered message.
    pub fn spinner(render: impl Fn() -> String + Send + Sync + 'static) -> Ticker {
        if !on_terminal() {
            return Self::log(render);
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .expect("valid template"),
        );
        Self::run(bar, move |b| b.set_message(render()))
    }

    /// A bar towards a known total of bytes; `done` reports bytes so far.
    pub fn bar(total: u64, done: impl Fn() -> u64 + Send + Sync + 'static) -> Ticker {
        Self::bar_with_message(total, done, String::new)
    }

    /// A bar towards a known total of bytes, with a message (such as files done) beside it.
    pub fn bar_with_message(
        total: u64,
        done: impl Fn() -> u64 + Send + Sync + 'static,
        message: impl Fn() -> String + Send + Sync + 'static,
    ) -> Ticker {
        if !on_terminal() {
            let started = std::time::Instant::now();
            return Self::log(move || {
                let d = done();
                let msg = message();
                format!(
                    "{} of {} ({}){}{}",
                    bytesize::ByteSize(d),
                    bytesize::ByteSize(total),
                    percent(d, total),
                    if msg.is_empty() {
                        String::new()
                    } else {
                        format!(", {msg}")
                    },
                    time_left(started.elapsed(), d, total)
                )
            });
        }
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

    /// A bar towards a known count (files, objects), with a message beside it.
    pub fn count_bar(
        total: u64,
        done: impl Fn() -> u64 + Send + Sync + 'static,
        message: impl Fn() -> String + Send + Sync + 'static,
    ) -> Ticker {
        if !on_terminal() {
            let started = std::time::Instant::now();
            return Self::log(move || {
                let d = done();
                format!(
                    "{d} of {total} ({}), {}{}",
                    percent(d, total),
                    message(),
                    time_left(started.elapsed(), d, total)
                )
            });
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "[{elapsed_precise}] {wide_bar} {pos}/{len} {msg} eta {eta}",
            )
            .expect("valid template"),
        );
        Self::run(bar, move |b| {
            b.set_position(done().min(total));
            b.set_message(message());
        })
    }

    /// Off a terminal: a line every [`log_every`] while the work goes on (none for short work).
    fn log(render: impl Fn() -> String + Send + 'static) -> Ticker {
        let (tx, rx) = mpsc::channel::<()>();
        let every = log_every();
        let thread = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(every) {
                let line = crate::format::tree::printable(&render()).into_owned();
                if tracing::dispatcher::has_been_set() {
                    tracing::info!("progress: {line}");
                } else {
                    eprintln!("firesafe: progress: {line}");
                }
            }
        });
        Ticker {
            stop: Some(tx),
            thread: Some(thread),
        }
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

fn percent(done: u64, total: u64) -> String {
    if total == 0 {
        return "0%".into();
    }
    format!("{}%", (done.min(total) * 100) / total)
}

/// ", about N minutes left" from the rate so far; nothing until there is a rate to go by.
fn time_left(elapsed: Duration, done: u64, total: u64) -> String {
    if done == 0 || done >= total || elapsed.as_secs() < 5 {
        return String::new();
    }
    let left = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
    format!(", about {} left", crate::plan::words::duration(left))
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
