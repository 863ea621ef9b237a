//! Request and connection logging to stderr, with seconds since start. Passwords are never logged and
//! tickets only shortened (see [`crate::tickets::short`]).

use std::sync::OnceLock;
use std::time::Instant;

static START: OnceLock<Instant> = OnceLock::new();

/// Starts the clock the log lines show.
pub fn init() {
    START.get_or_init(Instant::now);
}

/// Writes one line.
pub fn line(args: std::fmt::Arguments) {
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    eprintln!("webmks-sim [{t:9.3}] {args}");
}

/// `log!("format", args…)`: one line on stderr.
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log::line(format_args!($($arg)*))
    };
}
