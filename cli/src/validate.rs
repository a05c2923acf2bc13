//! `flowmesh validate`: checks that BPMN files can run, file by file or as a corpus report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use flowmesh_bpmn::model::Definitions;
use flowmesh_bpmn::parse;

/// Parse and validate BPMN files: prints `FILE: ok (processes: ...)` for each runnable file and
/// `FILE:LINE:COL: element ID: what is wrong` for each problem. Exit code 0 when every file can
/// run, 1 when any cannot, 2 on usage errors.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// BPMN files, or directories to search for *.bpmn files.
    #[arg(required = true, value_name = "FILE")]
    paths: Vec<PathBuf>,
    /// Print only counts: files parsed, executable, and refused or not executable by reason.
    #[arg(long)]
    summary: bool,
}

enum Outcome {
    Executable(Vec<String>),
    NotExecutable(Vec<(String, String)>),
    Refused {
        reason: &'static str,
        message: String,
    },
    Unreadable(String),
}

pub(crate) fn run(args: &Args) -> ExitCode {
    let mut files = Vec::new();
    for p in &args.paths {
        if p.is_dir() {
            collect(p, &mut files);
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    let mut report = Report::default();
    let mut all_ok = true;
    for file in &files {
        let started = Instant::now();
        let outcome = check(file);
        let took = started.elapsed();
        let name = file.display();
        if !matches!(outcome, Outcome::Executable(_)) {
            all_ok = false;
        }
        if !args.summary {
            match &outcome {
                Outcome::Executable(ids) => println!("{name}: ok (processes: {})", ids.join(", ")),
                Outcome::NotExecutable(problems) => {
                    for (_, p) in problems {
                        println!("{name}:{p}");
                    }
                }
                Outcome::Refused { message, .. } => println!("{name}:{message}"),
                Outcome::Unreadable(msg) => println!("{name}: {msg}"),
            }
        }
        report.add(file, &outcome, took);
    }
    if args.summary {
        report.print();
    }
    if files.is_empty() {
        eprintln!("flowmesh validate: no .bpmn files found in the given directories");
        return ExitCode::from(1);
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub(crate) fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!("flowmesh: cannot read directory {}", dir.display());
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("bpmn"))
        {
            out.push(path);
        }
    }
}

fn check(file: &Path) -> Outcome {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => return Outcome::Unreadable(format!("cannot read: {e}")),
    };
    match parse::parse_bytes(&bytes) {
        Ok(defs) => classify(&defs),
        Err(e) => Outcome::Refused {
            reason: e.reason(),
            message: e.to_string(),
        },
    }
}

fn classify(defs: &Definitions) -> Outcome {
    let problems = defs.problems();
    if problems.is_empty() {
        Outcome::Executable(defs.executable_processes().map(|p| p.id.clone()).collect())
    } else {
        Outcome::NotExecutable(
            problems
                .iter()
                .map(|p| (p.kind.name().to_owned(), p.to_string()))
                .collect(),
        )
    }
}

#[derive(Default)]
struct Report {
    files: usize,
    executable: usize,
    not_executable: BTreeMap<String, usize>,
    refused: BTreeMap<&'static str, usize>,
    unreadable: usize,
    slowest: Option<(Duration, PathBuf)>,
}

impl Report {
    fn add(&mut self, file: &Path, outcome: &Outcome, took: Duration) {
        self.files += 1;
        match outcome {
            Outcome::Executable(_) => self.executable += 1,
            Outcome::NotExecutable(problems) => {
                let first = problems.first().map_or("unknown", |(k, _)| k.as_str());
                *self.not_executable.entry(first.to_owned()).or_default() += 1;
            }
            Outcome::Refused { reason, .. } => *self.refused.entry(reason).or_default() += 1,
            Outcome::Unreadable(_) => self.unreadable += 1,
        }
        if self.slowest.as_ref().is_none_or(|(d, _)| took > *d) {
            self.slowest = Some((took, file.to_path_buf()));
        }
    }

    fn print(&self) {
        let refused: usize = self.refused.values().sum();
        let not_exec: usize = self.not_executable.values().sum();
        println!("files: {}", self.files);
        println!(
            "parsed into a model: {}",
            self.files - refused - self.unreadable
        );
        println!("  executable: {}", self.executable);
        println!("  not executable: {not_exec} (by first problem)");
        let mut by_count: Vec<_> = self.not_executable.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (reason, n) in by_count {
            println!("    {reason}: {n}");
        }
        println!("refused: {refused}");
        for (reason, n) in &self.refused {
            println!("    {reason}: {n}");
        }
        if self.unreadable > 0 {
            println!("unreadable: {}", self.unreadable);
        }
        if let Some((d, path)) = &self.slowest {
            println!(
                "slowest file: {:.1} ms ({})",
                d.as_secs_f64() * 1000.0,
                path.display()
            );
        }
    }
}
