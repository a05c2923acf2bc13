//! The files in deploy/ as an operator would use them: systemd's own checker accepts the
//! units (each pointed at the binary under test), and the example sidecar configuration
//! passes `flowmesh proxy --check`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Writes `source` into a temp dir as `unit` (the file name systemd would load it by), with the
/// installed binary's path replaced by the one under test and `edit` applied, and runs
/// `systemd-analyze verify` on it: whether it passed, and what it said.
fn verify(source: &Path, unit: &str, edit: impl Fn(String) -> String) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(source).expect("unit file");
    assert!(
        text.contains("/usr/local/bin/flowmesh"),
        "{unit} runs /usr/local/bin/flowmesh"
    );
    let text = edit(text.replace("/usr/local/bin/flowmesh", env!("CARGO_BIN_EXE_flowmesh")));
    let path = dir.path().join(unit);
    std::fs::write(&path, text).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd) runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn systemd_accepts_the_units() {
    let units = deploy().join("systemd");
    let control_plane = units.join("flowmesh-control-plane.service");
    for (source, unit) in [
        (control_plane.clone(), "flowmesh-control-plane.service"),
        (
            units.join("flowmesh-proxy@.service"),
            "flowmesh-proxy@payment.service",
        ),
    ] {
        // Success and not a word of warning: unknown keys and bad values are only warnings
        // to systemd.
        let (passed, said) = verify(&source, unit, |text| text);
        assert!(passed && said.trim().is_empty(), "{unit}: {said}");
    }

    // The checker is not blind: a misspelt key is reported.
    let (_, said) = verify(&control_plane, "bad.service", |text| {
        text.replace("ProtectSystem=", "ProtectSystm=")
    });
    assert!(said.contains("ProtectSystm"), "{said}");
}

#[test]
fn the_example_sidecar_configuration_checks() {
    let config = deploy().join("systemd/payment.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args(["proxy", "--check", "--config"])
        .arg(&config)
        .output()
        .expect("flowmesh runs");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains(": ok (service payment, inbound 0.0.0.0:15001 → app 127.0.0.1:8080"),
        "{said}"
    );

    // A broken file is refused with the key named, and nothing is started.
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("broken.toml");
    let text = std::fs::read_to_string(&config)
        .expect("config")
        .replace("[app]", "[app]\nadress = \"127.0.0.1:8081\"");
    std::fs::write(&broken, text).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_flowmesh"))
        .args(["proxy", "--check", "--config"])
        .arg(&broken)
        .output()
        .expect("flowmesh runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("adress"));
}
