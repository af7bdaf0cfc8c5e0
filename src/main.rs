//! The `fedsync` binary: parse the command line, run it, map errors to an exit code.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not glibc's malloc: a sync allocates and frees many small
/// values per record, and glibc spent a fifth of the destination's time in
/// malloc/free (see bench/README.md for the before and after).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = fedsync::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fedsync::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`fedsync record list M | head`): not an error.
        Err(error)
            if error
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(fedsync::cli::exit_code(&error))
        }
    }
}
