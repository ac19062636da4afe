//! Standard output of the commands. Writes return their error instead of panicking, so that a
//! reader closing the pipe early (`auditlake sql ... | head -2`) ends the command quietly:
//! `main` turns a broken pipe into a normal exit with nothing on standard error.

use std::io::{self, Write};

/// `print!` that returns `io::Result<()>`.
macro_rules! outprint {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

/// `println!` that returns `io::Result<()>`.
macro_rules! outprintln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {outprint, outprintln};

/// Writes to standard output and flushes, returning any error (a closed pipe among them).
pub fn write_out(args: std::fmt::Arguments) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)?;
    out.flush()
}

/// Whether an error (anywhere in its chain) is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
