//! `flowmesh validate` as users run it: output lines and exit codes.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn flowmesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args(args)
        .output()
        .unwrap()
}

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../bpmn/tests/fixtures")
        .join(name);
    p.to_str().unwrap().to_owned()
}

#[test]
fn runnable_file_prints_ok_with_processes() {
    let f = fixture("order-collaboration.bpmn");
    let out = flowmesh(&["validate", &f]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{f}: ok (processes: order, payment)\n")
    );
}

#[test]
fn problems_print_file_line_col_element_and_exit_1() {
    let f = fixture("not-runnable.bpmn");
    let out = flowmesh(&["validate", &f]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(&format!(
            "{f}:5:5: element no-type: service task has no job type"
        )),
        "{stdout}"
    );
}

#[test]
fn refused_files_and_missing_files_exit_1() {
    let dir = std::env::temp_dir().join(format!("flowmesh-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.bpmn");
    std::fs::write(&bad, "<definitions").unwrap();
    let out = flowmesh(&["validate", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("not well-formed XML")
    );
    let out = flowmesh(&["validate", dir.join("missing.bpmn").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("cannot read")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(flowmesh(&["validate"]).status.code(), Some(2));
    assert_eq!(
        flowmesh(&["validate", "--bogus", "x"]).status.code(),
        Some(2)
    );
    assert_eq!(flowmesh(&["nonsense"]).status.code(), Some(2));
}

#[test]
fn summary_counts_a_directory() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bpmn/tests/fixtures");
    let out = flowmesh(&["validate", "--summary", dir.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("files: "), "{stdout}");
    assert!(stdout.contains("  executable: "), "{stdout}");
}

#[test]
fn help_lists_subcommands() {
    let out = flowmesh(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().contains("validate"));
    assert_eq!(flowmesh(&["validate", "--help"]).status.code(), Some(0));
}
