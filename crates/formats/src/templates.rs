//! Meta's template list, `GET /{waba-id}/message_templates` (`{"data":[{"id","name",
//! "language","category","status",...}],"paging":{...}}`), read into template changes: each
//! template's category as of the instant the list was taken (decisions.md D150-D152). Fields
//! this does not need (`components`, `parameter_format`, `quality_score`, ...) are accepted and
//! not used.

use crate::events::{err, template_category, LineError, Parsed};
use crate::limits::{self, Limit};
use serde::Deserialize;
use std::borrow::Cow;
use wabill_rating::templates::{ChangeSource, Registry, Template, TemplateChange, TemplateError};
use wabill_rating::UnixMs;

#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    data: Option<Vec<Item<'a>>>,
}

#[derive(Deserialize)]
struct Item<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    language: Option<Cow<'a, str>>,
    #[serde(borrow)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
}

/// Reads one page (or a whole list) of Meta's `message_templates` JSON for `waba`, taken at
/// `at`. An error names the field (`data[2].category`) and why; line 1 is the document.
pub fn read_template_list<'a>(
    text: &'a str,
    waba: &'a str,
    at: UnixMs,
) -> Result<Vec<TemplateChange<'a>>, LineError> {
    let list: List<'a> = serde_json::from_str(text)
        .map_err(|e| err(1, "", format!("not Meta's message_templates JSON: {e}")))?;
    let data = list
        .data
        .ok_or_else(|| err(1, "data", "is missing (Meta's list of templates)"))?;
    let mut out = Vec::with_capacity(data.len());
    for (i, t) in data.into_iter().enumerate() {
        let f = |x: &str| format!("data[{i}].{x}");
        let text =
            |v: Option<Cow<'a, str>>, x: &str, limit: Limit| -> Result<Cow<'a, str>, LineError> {
                let v = v.ok_or_else(|| err(1, &f(x), "is missing"))?;
                limits::check(&v, limit).map_err(|why| err(1, &f(x), why))?;
                if v.trim().is_empty() {
                    return Err(err(1, &f(x), "is empty"));
                }
                Ok(v)
            };
        let id = text(t.id, "id", limits::ACCOUNT_ID)?;
        let name = text(t.name, "name", limits::TEMPLATE_NAME)?;
        let language = text(t.language, "language", limits::WORD)?;
        let category = text(t.category, "category", limits::WORD)?;
        let category = template_category(&category, 1, &f("category"))?;
        let status = match t.status {
            Some(s) => Some(text(Some(s), "status", limits::WORD)?),
            None => None,
        };
        out.push(TemplateChange {
            waba: Cow::Borrowed(waba),
            id,
            name,
            language,
            category,
            previous: None,
            at,
            source: ChangeSource::Import,
            status,
        });
    }
    Ok(out)
}

impl Parsed<'_> {
    /// Gives the outbound events naming a template the category in force at their send
    /// instant, from the template changes read (decisions.md D153). Nothing to do, and no cost,
    /// when no event names a template.
    pub fn resolve_templates(&mut self) -> Vec<TemplateError> {
        if self.template_refs.is_empty() {
            return Vec::new();
        }
        let (registry, mut errors) = Registry::from_changes(&self.templates);
        errors.extend(wabill_rating::templates::resolve(
            &mut self.events,
            &self.template_refs,
            &registry,
        ));
        errors
    }
}

/// One template with its category history, as `wabill templates list` and
/// `GET /v1/templates` give it (docs/events.md "Templates"): `category` is the newest.
pub fn template_json(t: &Template) -> serde_json::Value {
    let history: Vec<serde_json::Value> = t
        .history
        .iter()
        .map(|s| {
            let mut h = serde_json::json!({
                "category": s.category.as_str(),
                "from": crate::time::format_instant(s.from),
                "source": s.source.as_str(),
            });
            if let Some(p) = s.previous {
                h["previous_category"] = p.as_str().into();
            }
            h
        })
        .collect();
    serde_json::json!({
        "waba": t.waba,
        "id": t.id,
        "name": t.name,
        "language": t.language,
        "status": t.status,
        "category": t.history.last().map(|s| s.category.as_str()),
        "history": history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wabill_rating::Category;

    #[test]
    fn reads_metas_list_and_names_the_bad_field() {
        let page = r#"{"data":[{"name":"reservation_confirmation","parameter_format":"NAMED","components":[{"type":"BODY","text":"hi {{day}}"}],"language":"en_US","status":"APPROVED","category":"UTILITY","id":"546151681022936"},{"name":"promo","language":"pt_BR","status":"PAUSED","category":"MARKETING","id":"2"}],"paging":{"cursors":{"before":"MAZDZD","after":"MjQZD"}}}"#;
        let t = read_template_list(page, "W1", 1_000).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].id.as_ref(), t[0].name.as_ref(), t[0].language.as_ref()),
            ("546151681022936", "reservation_confirmation", "en_US")
        );
        assert_eq!(t[0].category, Category::Utility);
        assert_eq!(t[1].category, Category::Marketing);
        assert_eq!(t[1].status.as_deref(), Some("PAUSED"));
        assert_eq!((t[1].at, t[1].source), (1_000, ChangeSource::Import));

        let bad = page.replace("\"MARKETING\"", "\"TRANSACTIONAL\"");
        let e = read_template_list(&bad, "W1", 0).unwrap_err();
        assert_eq!(e.field, "data[1].category");
        assert!(e.why.contains("TRANSACTIONAL"), "{}", e.why);
        let e =
            read_template_list(r#"{"data":[{"id":"1","language":"en"}]}"#, "W1", 0).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.why.as_str()),
            ("data[0].name", "is missing")
        );
        let e = read_template_list(r#"{"paging":{}}"#, "W1", 0).unwrap_err();
        assert_eq!(e.field, "data");
    }
}
