//! `flowmesh render`: draws BPMN files as SVG with the monitor's renderer, one file to stdout
//! or many into a directory; every output is checked to be well-formed XML, so the command
//! doubles as a corpus check of the renderer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use flowmesh_bpmn::parse;
use flowmesh_bpmn::render::{self, Overlay};

/// Draw BPMN files as SVG, as the monitor does. With one FILE and no --out, the SVG goes to
/// stdout; otherwise each FILE.bpmn becomes OUT/FILE.svg. Prints one line per file and exits
/// 1 when any file could not be read, parsed or drawn.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// BPMN files, or directories to search for *.bpmn files.
    #[arg(required = true, value_name = "FILE")]
    paths: Vec<PathBuf>,
    /// Directory to write the SVG files into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let mut files = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            crate::validate::collect(p, &mut files);
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    let to_stdout = args.out.is_none() && files.len() == 1 && !args.paths[0].is_dir();
    if args.out.is_none() && !to_stdout {
        eprintln!("flowmesh render: several files need --out DIR to write the drawings into");
        return ExitCode::from(2);
    }
    if let Some(dir) = &args.out
        && let Err(e) = std::fs::create_dir_all(dir)
    {
        eprintln!("flowmesh render: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    let mut failed = 0usize;
    for file in &files {
        match draw(file) {
            Ok(svg) if to_stdout => print!("{svg}"),
            Ok(svg) => {
                let stem = file.file_stem().map_or_else(
                    || "diagram".to_owned(),
                    |s| s.to_string_lossy().into_owned(),
                );
                let Some(dir) = &args.out else { continue };
                let target = dir.join(format!("{stem}.svg"));
                match std::fs::write(&target, &svg) {
                    Ok(()) => println!(
                        "{}: {} ({} bytes)",
                        file.display(),
                        target.display(),
                        svg.len()
                    ),
                    Err(e) => {
                        failed += 1;
                        println!("{}: cannot write {}: {e}", file.display(), target.display());
                    }
                }
            }
            Err(e) => {
                failed += 1;
                println!("{}: {e}", file.display());
            }
        }
    }
    if !to_stdout {
        println!(
            "{} files, {} drawn, {failed} failed",
            files.len(),
            files.len() - failed
        );
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn draw(file: &Path) -> Result<String, String> {
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read: {e}"))?;
    let defs = parse::parse_bytes(&bytes).map_err(|e| format!("cannot parse: {e}"))?;
    // A renderer bug must not end a corpus run: it is reported as this file's failure.
    let svg = std::panic::catch_unwind(|| render::svg(&defs, &Overlay::default()))
        .map_err(|_| "the renderer panicked (a bug: please report it with this file)".to_owned())?;
    roxmltree::Document::parse(&svg).map_err(|e| format!("drawn SVG is not well-formed: {e}"))?;
    Ok(svg)
}
