//! Every `sh` example of README.md, run as pasted: in a copy of examples/, in the order of the
//! page, with the binary built for this test on `PATH` as `wabill`, each checked for exit 0.
//! The few lines that cannot run here are listed in [`RULES`] with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What to do with a README line instead of running it as it is.
enum Instead {
    /// Not run, for this reason.
    Skip(&'static str),
    /// Run this command instead, for this reason.
    Run(&'static str, &'static str),
    /// The text after the prefix run as `wabill ...`, for this reason.
    AsWabill(&'static str),
}

/// Lines matched by prefix, first match wins. Every rule must match a line of the README (a
/// rule left over from a removed example fails the test).
const RULES: &[(&str, Instead)] = &[
    (
        "cargo test",
        Instead::Skip("runs the workspace's tests, of which this test is one"),
    ),
    (
        "cargo install",
        Instead::Skip(
            "builds and installs a release binary from the source tree (minutes); \
             tests/install.rs checks that the README names it",
        ),
    ),
    (
        "cargo run --release -- bench",
        Instead::Run(
            "wabill bench --events 20000",
            "2,000,000 events take most of a minute in a debug build: the same command on fewer events",
        ),
    ),
    (
        "cargo run --release -- ",
        Instead::AsWabill("the same program: the binary cargo built for this test"),
    ),
    (
        "WABILL_APP_SECRET=app-secret WABILL_VERIFY_TOKEN=tok wabill serve",
        Instead::Skip("starts the service, which runs until stopped (tests/serve.rs starts it)"),
    ),
    (
        "wabill serve",
        Instead::Skip("starts the service, which runs until stopped (tests/serve.rs starts it)"),
    ),
    (
        "curl -s http://127.0.0.1:8080/v1/estimate",
        Instead::Skip(
            "asks a running `wabill serve`; tests/console.rs checks that the route answers what \
             `wabill estimate` prints for the same input",
        ),
    ),
    (
        "wabill load",
        Instead::Skip("drives a running `wabill serve` (tests/serve.rs runs it against one)"),
    ),
];

/// The commands of the README's `sh` blocks, with the line each starts on: continuation lines
/// (`\` at the end) joined, lines that are only a comment left out.
fn sh_examples(readme: &str) -> Vec<(usize, String)> {
    let mut commands = Vec::new();
    let mut in_sh = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        if !in_sh {
            in_sh = line.trim_end() == "```sh";
            continue;
        }
        if line.starts_with("```") {
            assert!(
                pending.is_none(),
                "README.md:{}: a block ends on a `\\`",
                i + 1
            );
            in_sh = false;
            continue;
        }
        if pending.is_none() && (line.trim().is_empty() || line.trim_start().starts_with('#')) {
            continue;
        }
        let (start, mut text) = pending.take().unwrap_or((i + 1, String::new()));
        match line.strip_suffix('\\') {
            Some(head) => {
                text.push_str(head);
                pending = Some((start, text));
            }
            None => {
                text.push_str(line);
                commands.push((start, text));
            }
        }
    }
    assert!(!in_sh, "an unclosed sh block");
    commands
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn every_readme_example_runs_as_pasted() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let commands = sh_examples(&readme);
    assert!(commands.len() > 30, "{commands:?}");

    let dir = std::env::temp_dir().join(format!("wabill-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&repo().join("examples"), &dir);
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_wabill")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut used = vec![false; RULES.len()];
    let mut skipped = Vec::new();
    let mut ran = 0;
    for (line, command) in &commands {
        let rule = RULES
            .iter()
            .position(|(prefix, _)| command.starts_with(prefix));
        let to_run = match rule {
            None => command.clone(),
            Some(r) => {
                used[r] = true;
                match &RULES[r].1 {
                    Instead::Skip(why) => {
                        skipped.push(format!("README.md:{line}: {command}\n    skipped: {why}"));
                        continue;
                    }
                    Instead::Run(other, why) => {
                        eprintln!("README.md:{line}: {command}\n    run as `{other}`: {why}");
                        other.to_string()
                    }
                    Instead::AsWabill(why) => {
                        let rest = &command[RULES[r].0.len()..];
                        eprintln!("README.md:{line}: {command}\n    run as `wabill {rest}`: {why}");
                        format!("wabill {rest}")
                    }
                }
            }
        };
        let mut cmd = Command::new("bash");
        cmd.args(["-o", "pipefail", "-c", &to_run])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("HOME", &dir);
        // The examples' own settings only: none of the environment's.
        for (name, _) in std::env::vars() {
            if name.starts_with("WABILL_") {
                cmd.env_remove(name);
            }
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "README.md:{line}: `{command}` exited {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    for (rule, used) in RULES.iter().zip(&used) {
        assert!(used, "no README line starts with {:?} any more", rule.0);
    }
    eprintln!("ran {ran} README examples; skipped {}:", skipped.len());
    for s in &skipped {
        eprintln!("{s}");
    }
    // What the examples wrote is there: the invoices finalized from files, one month after the
    // other, the second reading the first.
    let february: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("acme-2026-02.json")).unwrap())
            .unwrap();
    assert_eq!(february["status"], "final", "{february}");
    assert_eq!(february["month"], "2026-02");
    assert!(dir.join("acme-2026-01.json").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_example_set_up_files_are_the_readme_s_set_up() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let block = readme
        .split("```json\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains("\"tenant\""))
        .expect("the README shows a tenant set-up");
    let shown: serde_json::Value = serde_json::from_str(block).unwrap();
    for name in ["tenant.json", "acme.json"] {
        let file = std::fs::read_to_string(repo().join("examples").join(name)).unwrap();
        let file: serde_json::Value = serde_json::from_str(&file).unwrap();
        assert_eq!(file, shown, "examples/{name} is the README's set-up");
    }
    // The licence record the README adds names an agent of that set-up.
    let agents: Vec<&str> = shown["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    let added = readme
        .lines()
        .find(|l| l.starts_with("wabill tenants licence add"))
        .unwrap();
    let record = &added[added.find('{').unwrap()..=added.rfind('}').unwrap()];
    let record: serde_json::Value = serde_json::from_str(record).unwrap();
    let agent = record["target"]["agent"].as_str().unwrap();
    assert!(agents.contains(&agent), "{agent} is not among {agents:?}");
}
