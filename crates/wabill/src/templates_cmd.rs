//! `wabill templates`: Meta's template list into `template` lines, and the registry (every
//! template with its category history) of event files.

use crate::input::read_source;
use crate::rate_cmd::{EXIT_INVALID, EXIT_UNRATABLE};
use anyhow::Result;
use std::io::Write;
use wabill_formats::templates::{read_template_list, template_json};
use wabill_formats::{parse_line, Parsed};
use wabill_rating::templates::Registry;

#[derive(clap::Subcommand, Debug)]
#[command(after_help = "Examples:\n  \
    curl 'https://graph.facebook.com/v23.0/102290129340398/message_templates?limit=1000' \\\n    \
    -H 'Authorization: Bearer ...' > templates.json\n  \
    wabill templates import templates.json --waba 102290129340398 > templates.jsonl\n  \
    wabill rate templates.jsonl events.jsonl\n  \
    wabill templates list templates.jsonl webhooks.jsonl")]
pub enum TemplatesCommand {
    /// Read Meta's `GET /{waba-id}/message_templates` JSON (`-` for standard input) and write
    /// one `template` line per template (events.md), to give `wabill rate` beside the events.
    Import {
        file: String,
        /// The WABA the list is of (Meta's list does not say it).
        #[arg(long)]
        waba: String,
        /// When the list was taken (RFC 3339 or Unix seconds): each category is known from
        /// then on. Default: now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Every template of event files (`template` lines, Meta's template webhooks) with its
    /// category history, one JSON object per line.
    List {
        #[arg(required = true)]
        files: Vec<String>,
    },
}

pub fn run(cmd: &TemplatesCommand) -> Result<i32> {
    let stderr = &mut std::io::stderr().lock();
    match cmd {
        TemplatesCommand::Import { file, waba, at } => {
            if waba.trim().is_empty() {
                writeln!(stderr, "error: --waba is empty")?;
                return Ok(EXIT_INVALID);
            }
            let at = match at {
                Some(a) => match wabill_formats::time::parse_instant(a)
                    .or_else(|_| wabill_formats::time::unix_seconds(a))
                {
                    Ok(t) => t,
                    Err(why) => {
                        writeln!(stderr, "error: --at: {why}")?;
                        return Ok(EXIT_INVALID);
                    }
                },
                None => wabill_engine::clock::system_now(),
            };
            let source = read_source(file)?;
            let changes = match read_template_list(&source.text, waba, at) {
                Ok(c) => c,
                Err(e) => {
                    let field = if e.field.is_empty() {
                        String::new()
                    } else {
                        format!("field '{}': ", e.field)
                    };
                    writeln!(stderr, "error: {}: {field}{}", source.name, e.why)?;
                    return Ok(EXIT_INVALID);
                }
            };
            let mut out = Vec::new();
            for c in &changes {
                wabill_formats::events::write_template(&mut out, c);
                out.push(b'\n');
            }
            std::io::stdout().lock().write_all(&out)?;
            writeln!(stderr, "{} template(s) of WABA {waba}", changes.len())?;
            Ok(0)
        }
        TemplatesCommand::List { files } => {
            let sources = files
                .iter()
                .map(|f| read_source(f))
                .collect::<Result<Vec<_>>>()?;
            let mut parsed = Parsed::default();
            let mut bad = 0;
            for s in &sources {
                for (i, line) in s.text.split('\n').enumerate() {
                    if let Err(e) = parse_line(line, i as u64 + 1, &mut parsed) {
                        writeln!(stderr, "{}: {e}", s.name)?;
                        bad += 1;
                    }
                }
            }
            if bad > 0 {
                return Ok(EXIT_INVALID);
            }
            let (registry, errors) = Registry::from_changes(&parsed.templates);
            for e in &errors {
                writeln!(stderr, "error: [{}] {e}", e.code())?;
            }
            if !errors.is_empty() {
                return Ok(EXIT_UNRATABLE);
            }
            let mut out = std::io::stdout().lock();
            for t in registry.iter() {
                writeln!(out, "{}", template_json(t))?;
            }
            Ok(0)
        }
    }
}
