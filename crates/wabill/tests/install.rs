//! wabill as an installed tool: its licence, shell completions, man page, version, install
//! line and service unit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wabill(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wabill"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// The `license` of the workspace's Cargo.toml, which every crate inherits.
fn workspace_license() -> String {
    let toml = std::fs::read_to_string(repo().join("Cargo.toml")).unwrap();
    let line = toml
        .lines()
        .find(|l| l.trim_start().starts_with("license ="))
        .expect("Cargo.toml names a licence");
    line.split('"').nth(1).unwrap().to_string()
}

#[test]
fn the_licence_file_is_the_text_of_the_licence_cargo_toml_names() {
    let license = workspace_license();
    // Every crate takes the workspace's licence: one LICENSE file covers them all.
    for entry in std::fs::read_dir(repo().join("crates")).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let toml = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            toml.contains("license.workspace = true"),
            "{} does not take the workspace licence",
            manifest.display()
        );
    }
    let text = std::fs::read_to_string(repo().join("LICENSE")).expect("a LICENSE file");
    // An SPDX identifier `Name-Version` is the licence whose text is headed by its name and
    // version (Apache-2.0: "Apache License" / "Version 2.0, January 2004").
    let (name, version) = license.rsplit_once('-').expect("an SPDX id with a version");
    let mut heading = text.lines().map(str::trim).filter(|l| !l.is_empty());
    assert_eq!(heading.next(), Some(format!("{name} License").as_str()));
    assert!(
        heading
            .next()
            .unwrap()
            .starts_with(&format!("Version {version},")),
        "LICENSE is not version {version} of {name}"
    );
    assert!(
        text.contains("END OF TERMS AND CONDITIONS"),
        "the whole text, not an excerpt"
    );
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("[{license}](LICENSE)")),
        "the README names the licence and links the file"
    );
}
