//! Repeated warnings, rate-limited: a condition that lasts (a full disk, a runtime
//! that is gone, a guest calling a host it may not) would otherwise write the same
//! line hundreds of times a second and bury everything else.
//!
//! Each place in the code that warns (or errors) may write [`PER_WINDOW`] lines per
//! [`WINDOW`]; past them its lines are counted, not written, and when the window ends
//! one line says how many were held back and what the last of them said (`… 312 more
//! in the last 10 s`). Lines below `warn` are not limited: their volume is chosen with
//! the log filter. The decision is a per-layer filter of the subscriber
//! ([`Throttle`]); the summaries are written by a thread of their own, outside any
//! event, every window.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::callsite::Identifier;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Filter};

/// Lines one place may write per window.
pub const PER_WINDOW: u32 = 5;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(10);

/// One place's window.
struct Window {
    started: Instant,
    written: u32,
    held: u32,
    last: String,
    metadata: &'static Metadata<'static>,
}

/// The filter that holds back repeated warnings.
#[derive(Clone, Default)]
pub struct Throttle {
    windows: Arc<Mutex<HashMap<Identifier, Window>>>,
}

/// Reads an event's message.
struct Message<'a>(&'a mut String);

impl tracing::field::Visit for Message<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }
}

impl Throttle {
    /// Whether an event at `metadata` may be written now (`message` reads it, only
    /// when it is held back).
    fn admit(
        &self,
        metadata: &'static Metadata<'static>,
        message: impl FnOnce() -> String,
        now: Instant,
    ) -> bool {
        if *metadata.level() > Level::WARN {
            return true;
        }
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let window = windows
            .entry(metadata.callsite())
            .or_insert_with(|| Window {
                started: now,
                written: 0,
                held: 0,
                last: String::new(),
                metadata,
            });
        if now.duration_since(window.started) >= WINDOW && window.held == 0 {
            window.started = now;
            window.written = 0;
        }
        if window.written < PER_WINDOW {
            window.written += 1;
            return true;
        }
        window.held += 1;
        window.last = message();
        false
    }

    /// The windows that ended with lines held back: (where, how many, the last one),
    /// each window started again.
    fn ended(&self, now: Instant) -> Vec<(&'static Metadata<'static>, u32, String)> {
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut ended = Vec::new();
        for window in windows.values_mut() {
            if now.duration_since(window.started) < WINDOW {
                continue;
            }
            if window.held > 0 {
                ended.push((
                    window.metadata,
                    window.held,
                    std::mem::take(&mut window.last),
                ));
            }
            window.started = now;
            window.written = 0;
            window.held = 0;
        }
        // Places quiet for a whole window are forgotten, so the map stays small.
        windows.retain(|_, window| {
            window.written > 0 || window.held > 0 || now.duration_since(window.started) < WINDOW
        });
        ended
    }

    /// Starts the thread that writes the summaries of held-back lines.
    pub fn start_summaries(&self) {
        let throttle = self.clone();
        let spawned = std::thread::Builder::new()
            .name("log-throttle".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(WINDOW / 4);
                    for (metadata, held, last) in throttle.ended(Instant::now()) {
                        tracing::warn!(
                            target: "wasya::log",
                            held,
                            at = %format!("{}:{}", metadata.file().unwrap_or("?"), metadata.line().unwrap_or(0)),
                            from = metadata.target(),
                            "… {held} more in the last {}s like: {last}",
                            WINDOW.as_secs()
                        );
                    }
                }
            });
        if let Err(error) = spawned {
            eprintln!("warning: repeated log lines are not summarised: {error}");
        }
    }
}

impl<S: Subscriber> Filter<S> for Throttle {
    fn enabled(&self, _metadata: &Metadata<'_>, _context: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _context: &Context<'_, S>) -> bool {
        // The summaries themselves are never held back.
        if event.metadata().target() == "wasya::log" {
            return true;
        }
        self.admit(
            event.metadata(),
            || {
                let mut message = String::new();
                event.record(&mut Message(&mut message));
                message
            },
            Instant::now(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static CALLSITE: tracing::callsite::DefaultCallsite =
        tracing::callsite::DefaultCallsite::new(&META);
    static META: Metadata<'static> = tracing::metadata! {
        name: "test",
        target: "wasya::test",
        level: Level::WARN,
        fields: &[],
        callsite: &CALLSITE,
        kind: tracing::metadata::Kind::EVENT,
    };

    #[test]
    fn a_place_writes_a_few_lines_per_window_then_one_summary() {
        let throttle = Throttle::default();
        let start = Instant::now();
        let admitted = (0..100)
            .filter(|n| throttle.admit(&META, || format!("disk full {n}"), start))
            .count();
        assert_eq!(admitted, PER_WINDOW as usize);
        assert!(throttle.ended(start).is_empty(), "the window is still open");
        let ended = throttle.ended(start + WINDOW);
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].1, 100 - PER_WINDOW);
        assert_eq!(ended[0].2, "disk full 99");
        // A new window writes again.
        assert!(throttle.admit(&META, String::new, start + WINDOW));
    }
}
