//! The `sumpool` binary: parse the command line, run, and turn the result into an exit code.

use std::io::{self, Write};
use std::process::ExitCode;

use sumpool::cli::{Action, Cli};
use sumpool::report::{EXIT_ERROR, EXIT_SUCCESS, PROGRAM, exit_code, io_reason, is_broken_pipe};

fn main() -> ExitCode {
    let cli = match Cli::parse_args() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with status 0; usage errors to stderr with 2.
            let _ = err.print();
            return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
        }
    };
    let config = match cli.into_action() {
        Ok(Action::Run(config)) => *config,
        Ok(Action::Completions(shell)) => {
            let mut out = io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::definition(), "sumpool", &mut out);
            return finish_output(out.flush());
        }
        Ok(Action::Man) => {
            let mut out = io::stdout().lock();
            let rendered = clap_mangen::Man::new(Cli::definition()).render(&mut out);
            return finish_output(rendered.and_then(|()| out.flush()));
        }
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(err.exit_code().clamp(0, 255) as u8);
        }
    };
    // glibc raises its mmap threshold each time a large block is freed, and from then on
    // keeps freed buffers of a megabyte in its per-thread arenas: with tens of readers on a
    // cold disk, tens of megabytes of memory holding nothing (121 MiB peak on 2,000 files of
    // 1 MiB). A fixed threshold gives every buffer of 256 KiB or more back when it is freed;
    // sumpool keeps its own few spares (engine/run/buffers.rs).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
    }
    raise_open_file_limit();
    sumpool::signals::install();
    let mut out = sumpool::format::line::stdout_writer();
    // Not locked for the whole run: the progress bar's ticker thread writes to stderr too.
    let mut err = io::stderr();
    let code = match sumpool::run(&config, &mut out, &mut err) {
        Ok(report) => match report.interrupted {
            // Whole lines are out; end the way the signal would have ended the process.
            Some(signal) => {
                drop(out);
                let _ = release_output();
                sumpool::signals::exit_by(signal)
            }
            None => exit_code(report.exit_code()),
        },
        Err(error) if is_broken_pipe(&error) => exit_code(EXIT_SUCCESS),
        // A signal stopped the run while it was opening or preparing (the open of a FIFO
        // that no one reads): end by it, as an orderly stop would.
        Err(_) if sumpool::signals::stop_requested().is_some() => {
            let signal = sumpool::signals::stop_requested().unwrap_or(libc::SIGTERM);
            drop(out);
            let _ = release_output();
            sumpool::signals::exit_by(signal)
        }
        Err(error) => {
            let _ = writeln!(err, "{PROGRAM}: {}", fatal_message(&error));
            exit_code(EXIT_ERROR)
        }
    };
    drop(out);
    match release_output() {
        Ok(()) => code,
        Err(e) => {
            let _ = writeln!(err, "{PROGRAM}: write error: {}", io_reason(&e));
            exit_code(EXIT_ERROR)
        }
    }
}

/// Raises the soft limit of open files to the hard one, as many tools do: a soft limit of
/// 1024 is a default of the 1990s, and tens of reads in flight with a window of directory
/// handles want more. What the hard limit still does not allow, the I/O policy fits in.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Closes standard output, reporting what its close reports (a file system may only report
/// a failed write then), and puts `/dev/null` in place of it and of standard error.
///
/// Done before the process exits because a reader thread stuck in the kernel (a FUSE
/// request its daemon never answers, a hard NFS mount) keeps the process from exiting until
/// the kernel lets it go, and with it the descriptors: a pipe into `sha256sum -c` or a CI
/// log would wait for its end as long. Released here, the reader of the pipe sees the end as
/// soon as the output is complete.
fn release_output() -> io::Result<()> {
    // SAFETY: descriptor calls on the process's own standard streams, after the last write
    // to them; /dev/null takes their numbers at once, so no later open can reuse them.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        let closed = if libc::close(libc::STDOUT_FILENO) == 0 {
            Ok(())
        } else {
            let error = io::Error::last_os_error();
            // Standard output was not open: nothing to report.
            if error.raw_os_error() == Some(libc::EBADF) {
                Ok(())
            } else {
                Err(error)
            }
        };
        if null >= 0 {
            libc::dup2(null, libc::STDOUT_FILENO);
            // Standard error stays open while there is something to report on it.
            if closed.is_ok() {
                libc::dup2(null, libc::STDERR_FILENO);
            }
            if null > libc::STDERR_FILENO {
                libc::close(null);
            }
        }
        closed
    }
}

/// `context: cause: cause`, with OS errors worded as GNU tools word them.
fn fatal_message(error: &anyhow::Error) -> String {
    let parts: Vec<String> = error
        .chain()
        .map(|cause| match cause.downcast_ref::<io::Error>() {
            Some(io_err) => io_reason(io_err),
            None => cause.to_string(),
        })
        .collect();
    parts.join(": ")
}

/// The exit code after printing generated text (completions, manual page).
fn finish_output(result: io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => exit_code(EXIT_SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit_code(EXIT_SUCCESS),
        Err(e) => {
            let _ = writeln!(
                io::stderr(),
                "{PROGRAM}: standard output: {}",
                io_reason(&e)
            );
            exit_code(EXIT_ERROR)
        }
    }
}
