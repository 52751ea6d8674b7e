//! Renders `docs/reliability.md` from the records the reliability tests
//! leave in a directory (see `integration_tests::figures`). Run by
//! `cargo xtask reliability`, which runs the tests first.
//!
//! Usage: `reliability_report <records dir> <output file> <command> <context>`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, output, command, context] = args.as_slice() else {
        eprintln!("usage: reliability_report <records dir> <output file> <command> <context>");
        return ExitCode::from(2);
    };
    let written = integration_tests::figures::render_report(dir.as_ref(), command, context)
        .and_then(|report| std::fs::write(output, report).map_err(Into::into));
    match written {
        Ok(()) => {
            println!("wrote {output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
