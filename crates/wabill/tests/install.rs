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

/// The subcommands `wabill help` lists (nested ones as `rates import`), read from its
/// "Commands:" section, `help` itself left out.
fn subcommands(prefix: &[&str]) -> Vec<Vec<String>> {
    let mut args: Vec<&str> = prefix.to_vec();
    args.push("--help");
    let help = text(&wabill(&args).stdout);
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if !line.starts_with("  ") {
                break;
            }
            // A name is the first word of a line indented by two spaces; deeper lines continue
            // a description.
            if line.starts_with("   ") {
                continue;
            }
            let name = line.split_whitespace().next().unwrap();
            if name != "help" {
                names.push(name.to_string());
            }
        }
    }
    let mut all = Vec::new();
    for name in names {
        let mut path: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        path.push(name.clone());
        let nested: Vec<&str> = path.iter().map(String::as_str).collect();
        let children = subcommands(&nested);
        all.push(path);
        all.extend(children);
    }
    all
}

#[test]
fn completion_scripts_name_every_subcommand() {
    let commands = subcommands(&[]);
    let names: Vec<&str> = commands
        .iter()
        .map(|p| p.last().unwrap().as_str())
        .collect();
    for expected in [
        "rate",
        "serve",
        "completions",
        "man",
        "import",
        "list",
        "create",
    ] {
        assert!(
            names.contains(&expected),
            "`wabill help` lists {expected}: {names:?}"
        );
    }
    let bash = wabill(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0), "{}", text(&bash.stderr));
    let script = text(&bash.stdout);
    assert!(script.contains("complete -F"), "a bash completion script");
    for path in &commands {
        // bash completion names nested subcommands by their path:
        // `wabill__subcmd__rates__subcmd__import`.
        let function_name = format!("wabill__subcmd__{}", path.join("__subcmd__"));
        assert!(
            script.contains(&function_name),
            "the bash script completes `wabill {}`",
            path.join(" ")
        );
    }
    // Every shell clap_complete supports, each naming every top-level subcommand.
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let out = wabill(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out.stderr));
        let script = text(&out.stdout);
        for name in commands.iter().filter(|p| p.len() == 1) {
            assert!(script.contains(&name[0]), "{shell} completes {}", name[0]);
        }
    }
    let wrong = wabill(&["completions", "tcsh"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("possible values"));
}

#[test]
fn the_man_page_is_roff_naming_every_subcommand() {
    let out = wabill(&["man"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let page = text(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{page:.200}"
    );
    assert!(
        page.contains(".TH wabill 1"),
        "a section 1 page titled wabill"
    );
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH DESCRIPTION",
        ".SH SUBCOMMANDS",
    ] {
        assert!(page.contains(section), "{section}");
    }
    for path in subcommands(&[]).iter().filter(|p| p.len() == 1) {
        // clap_mangen lists each subcommand as `wabill-NAME(1)`.
        assert!(
            page.contains(&format!("wabill\\-{}(1)", path[0].replace('-', "\\-"))),
            "the page names {}",
            path[0]
        );
    }
    // A subcommand's own page, with its options.
    let rate = text(&wabill(&["man", "rate"]).stdout);
    assert!(rate.contains(".TH wabill-rate 1"), "{rate:.300}");
    assert!(
        rate.contains("skip\\-invalid"),
        "the rate page has its options"
    );
    let unknown = wabill(&["man", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("no subcommand \"nope\""));
}

#[test]
fn version_names_the_commit_and_the_newest_rate_card_of_each_currency() {
    let out = wabill(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let version = text(&out.stdout);
    let mut lines = version.lines();
    // The commit the binary was built from: HEAD of this work tree when git can tell.
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    assert_eq!(
        lines.next().unwrap(),
        format!("wabill {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
    // The newest effective date per currency of data/rates.csv, read here from the file.
    let csv = std::fs::read_to_string(repo().join("data/rates.csv")).unwrap();
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (date, currency) = (at("effective_from"), at("currency"));
    let mut newest = std::collections::BTreeMap::<String, String>::new();
    for row in rows {
        let f: Vec<&str> = row.split(',').collect();
        let e = newest.entry(f[currency].to_string()).or_default();
        *e = (*e).clone().max(f[date].to_string());
    }
    assert!(newest.len() >= 2, "several currencies are bundled");
    let cards: Vec<String> = newest.iter().map(|(c, d)| format!("{c} {d}")).collect();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "newest bundled rate card per currency: {}",
            cards.join(", ")
        )
    );
    // `-V` is the short form: version and commit.
    let short = text(&wabill(&["-V"]).stdout);
    assert_eq!(
        short.trim(),
        format!("wabill {} (commit {head})", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_readme_installs_with_cargo_install_and_links_the_service_unit() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains("cargo install --locked --path crates/wabill"));
    assert!(readme.contains("(contrib/wabill.service)"));
}

/// A free port on the loopback interface.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_example_service_unit_starts_the_service_and_verifies() {
    let unit = std::fs::read_to_string(repo().join("contrib/wabill.service")).unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit starts something");
    let mut words = exec.split_whitespace();
    assert_eq!(
        words.next(),
        Some("/usr/local/bin/wabill"),
        "where --root /usr/local installs"
    );
    let args: Vec<&str> = words.collect();
    let config_at = args.iter().position(|a| *a == "--config").unwrap() + 1;
    assert_eq!(args[config_at], "/etc/wabill.json");

    let dir = std::env::temp_dir().join(format!("wabill-install-{}-unit", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_wabill");

    // systemd's own check of the unit, with the binary where the unit expects one, when the
    // machine has systemd-analyze: no error and no warning.
    let local = dir.join("wabill.service");
    std::fs::write(&local, unit.replace("/usr/local/bin/wabill", bin)).unwrap();
    match Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&local)
        .output()
    {
        Ok(out) => assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify: {}",
            text(&out.stderr)
        ),
        Err(e) => eprintln!("SKIPPED systemd-analyze verify: {e}"),
    }

    // The unit's command line, its configuration file in a temporary directory: the service
    // starts and answers.
    let port = free_port();
    let config = dir.join("wabill.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"db": "{}", "listen": "127.0.0.1:{port}"}}"#,
            dir.join("wabill.sqlite").display()
        ),
    )
    .unwrap();
    let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    args[config_at] = config.to_str().unwrap().to_string();
    let mut child = Command::new(bin)
        .args(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let answer = loop {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            break answer;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the service exited: {}",
            text(&child.wait_with_output().unwrap().stderr)
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the service never listened"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_build_script_records_the_commit_in_git_and_unknown_in_a_tarball() {
    let dir = std::env::temp_dir().join(format!("wabill-install-{}-build", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The build script compiled alone, as cargo compiles it.
    let script = dir.join("build-script");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let out = Command::new(rustc)
        .args(["--edition", "2021", "-o"])
        .arg(&script)
        .arg(crate_dir.join("build.rs"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let commit_of = |manifest_dir: &Path| -> String {
        let out = Command::new(&script)
            .env("CARGO_MANIFEST_DIR", manifest_dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("cargo:rustc-env=WABILL_GIT_COMMIT="))
            .expect("the script sets WABILL_GIT_COMMIT")
            .to_string()
    };
    // In this work tree: what git says of HEAD, when git is there to say it.
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(crate_dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_string());
    if let Some(head) = head {
        assert_eq!(commit_of(crate_dir), head);
    }
    // The crate as a source tarball unpacks it: its files, no git history.
    let unpacked = dir.join("wabill-0.1.0/crates/wabill");
    std::fs::create_dir_all(&unpacked).unwrap();
    std::fs::copy(crate_dir.join("Cargo.toml"), unpacked.join("Cargo.toml")).unwrap();
    std::fs::copy(crate_dir.join("build.rs"), unpacked.join("build.rs")).unwrap();
    assert_eq!(commit_of(&unpacked), "unknown");
    let _ = std::fs::remove_dir_all(&dir);
}
