//! `flowmesh migrate-model`: rewrites a Camunda 7 model into the Zeebe dialect and says what
//! it changed and what it could not translate.

use std::path::PathBuf;
use std::process::ExitCode;

use flowmesh_bpmn::migrate::{self, Options};

/// Translate a Camunda 7 BPMN file into the Zeebe dialect flowmesh runs: delegate
/// expressions, classes and external-task topics become job types, asyncBefore/After go, JUEL
/// conditions and timers become FEEL. Prints one line per change and per thing left to do
/// (`todo:`) on stderr, then what still keeps the result from running. Exit code 0 when the
/// result can run, 1 when it cannot (or the file cannot be read), 2 on usage errors.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// The Camunda 7 BPMN file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where to write the result (default: stdout).
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// A correlation key for messages that have none (Camunda 7 correlates by API call;
    /// Zeebe needs one), e.g. '=orderId'.
    #[arg(long, value_name = "EXPR")]
    correlation_key: Option<String>,
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let name = args.file.display();
    let text = match std::fs::read(&args.file) {
        Ok(b) => match String::from_utf8(b) {
            Ok(t) => t,
            Err(_) => {
                eprintln!("{name}: not UTF-8; re-save it as UTF-8 first");
                return ExitCode::FAILURE;
            }
        },
        Err(e) => {
            eprintln!("{name}: cannot read: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(k) = &args.correlation_key
        && !k.starts_with('=')
    {
        eprintln!(
            "flowmesh migrate-model: --correlation-key is a FEEL expression starting with '=' (e.g. '=orderId'), not '{k}'"
        );
        return ExitCode::from(2);
    }
    let options = Options {
        correlation_key: args.correlation_key.clone(),
    };
    let migrated = match migrate::migrate(&text, &options) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for n in &migrated.notes {
        let todo = if n.todo { "todo: " } else { "" };
        eprintln!(
            "{name}:{}: element {}: {todo}{}",
            n.line, n.element, n.message
        );
    }
    let written = match &args.out {
        Some(out) => {
            std::fs::write(out, &migrated.xml).map_err(|e| format!("{}: {e}", out.display()))
        }
        None => {
            print!("{}", migrated.xml);
            Ok(())
        }
    };
    if let Err(e) = written {
        eprintln!("flowmesh migrate-model: cannot write {e}");
        return ExitCode::FAILURE;
    }
    let problems = match flowmesh_bpmn::parse(&migrated.xml) {
        Ok(defs) => defs.problems(),
        Err(e) => {
            eprintln!("{name}: the result does not parse (a bug: please report it): {e}");
            return ExitCode::FAILURE;
        }
    };
    let todo = migrated.notes.iter().filter(|n| n.todo).count();
    if problems.is_empty() {
        eprintln!(
            "{name}: translated; it can run ({} changes, {todo} left to check by hand)",
            migrated.notes.len() - todo
        );
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            eprintln!("{name}: still: {p}");
        }
        eprintln!(
            "{name}: translated, but {} problems keep it from running",
            problems.len()
        );
        ExitCode::FAILURE
    }
}
