//! The `sumpool` binary: parse the command line, run, and turn the result into an exit code.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use sumpool::cli::{Action, Cli};
use sumpool::report::{EXIT_ERROR, EXIT_SUCCESS, PROGRAM, exit_code, io_reason, is_broken_pipe};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
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
    sumpool::signals::install();
    let mut out = sumpool::format::line::stdout_writer();
    // Not locked for the whole run: the progress bar's ticker thread writes to stderr too.
    let mut err = io::stderr();
    match sumpool::run(&config, &mut out, &mut err) {
        Ok(report) => match report.interrupted {
            // Whole lines are out; end the way the signal would have ended the process.
            Some(signal) => {
                drop(out);
                sumpool::signals::exit_by(signal)
            }
            None => exit_code(report.exit_code()),
        },
        Err(error) if is_broken_pipe(&error) => exit_code(EXIT_SUCCESS),
        Err(error) => {
            let _ = writeln!(err, "{PROGRAM}: {}", fatal_message(&error));
            exit_code(EXIT_ERROR)
        }
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
