//! The `firesafe` command: builds the runtime, runs one command, prints the error and maps the
//! outcome to an exit code (0 success, 1 completed with findings or warnings, 2 could not run).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args = <cli::Cli as clap::Parser>::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("firesafe: error: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(outcome) => ExitCode::from(outcome as u8),
        Err(e) => {
            eprintln!("firesafe: error: {e}");
            ExitCode::from(2)
        }
    }
}
