//! The `fedsync` binary: parse the command line, run it, map errors to an exit code.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc, not glibc's malloc: a sync allocates and frees many small
/// values per record, and glibc spent a fifth of the destination's time in
/// malloc/free (see bench/README.md for the before and after).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
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
            match error.downcast_ref::<fedsync::cli::Interrupted>() {
                // Ctrl-C stopped a wait, not the work: no `error: `.
                Some(interrupted) => eprintln!("{interrupted}"),
                None => eprintln!("error: {}", fedsync::cli::error_text(&error)),
            }
            ExitCode::from(fedsync::cli::exit_code(&error))
        }
    }
}

/// `fedsync ... | head`: when the reader of stdout goes away, `println!`
/// panics ("failed printing to stdout: Broken pipe"), which printed a panic
/// and a backtrace. The reader has what it wanted: stop quietly, as the
/// errors returned for it in `main` do.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
