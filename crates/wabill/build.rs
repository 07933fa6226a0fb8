//! Records the git commit the binary is built from for `wabill --version`: `git rev-parse
//! --short HEAD` when this crate is a tracked part of a git work tree, else `unknown` (a
//! source tarball, or no git installed).

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(manifest_dir())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only this crate's own repository counts: a tarball unpacked inside some other work tree
    // is not that tree's commit.
    let commit = git(&["ls-files", "--error-unmatch", "Cargo.toml"])
        .and_then(|_| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    // Build again when HEAD moves: HEAD itself, the branch it names, and packed refs.
    for name in ["HEAD", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            rerun_if_changed(&path);
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &branch]) {
            rerun_if_changed(&path);
        }
    }
    println!("cargo:rustc-env=WABILL_GIT_COMMIT={commit}");
}

fn rerun_if_changed(path: &str) {
    let path = Path::new(&manifest_dir()).join(path);
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
}
