//! The template registry: a WABA's message templates (id, name, language) and the history of
//! their categories, as Meta's template list (`GET /{waba-id}/message_templates`) and its
//! `template_category_update` / `message_template_status_update` webhooks tell it. Meta
//! re-categorises templates; an `outbound` event that names its template is charged in the
//! category in force at its send instant (decisions.md D150-D154).
//!
//! Pure: changes come in (in any order), the category in force at an instant comes out.

use crate::event::{Event, MessageKind};
use crate::model::Category;
use crate::time::UnixMs;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// Where a category change was learnt.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum ChangeSource {
    /// A template list (`wabill templates import`, `PUT /v1/templates`): the category the
    /// template had when the list was taken.
    Import,
    /// One of Meta's template webhooks.
    Webhook,
}

impl ChangeSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeSource::Import => "import",
            ChangeSource::Webhook => "webhook",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "import" => Some(ChangeSource::Import),
            "webhook" => Some(ChangeSource::Webhook),
            _ => None,
        }
    }
}

/// What one import line or one webhook says of a template: its category from an instant on
/// (and, for a completed re-categorisation, the category it had before).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TemplateChange<'a> {
    pub waba: Cow<'a, str>,
    /// Meta's template id (a numeric string).
    pub id: Cow<'a, str>,
    pub name: Cow<'a, str>,
    /// Meta's language and locale code (`en_US`).
    pub language: Cow<'a, str>,
    /// Marketing, utility or authentication.
    pub category: Category,
    /// `previous_category` of a completed `template_category_update`.
    pub previous: Option<Category>,
    pub at: UnixMs,
    pub source: ChangeSource,
    /// Meta's template status (`APPROVED`, `PAUSED`, ...), when the change says it.
    pub status: Option<Cow<'a, str>>,
}

/// One entry of a template's category history.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct CategorySpan {
    /// In force from this instant on (until the next entry).
    pub from: UnixMs,
    pub source: ChangeSource,
    pub category: Category,
    pub previous: Option<Category>,
}

/// A template and its category history, oldest first.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Template {
    pub waba: String,
    pub id: String,
    pub name: String,
    pub language: String,
    /// The latest status said (by instant), if any.
    pub status: Option<String>,
    status_at: Option<(UnixMs, ChangeSource)>,
    pub history: Vec<CategorySpan>,
}

impl Template {
    /// The category in force at `at`: the latest entry from `at` or before; before the first
    /// entry, the category that entry replaced when it says so, else its own (the oldest known;
    /// Meta gives no older history). D152.
    pub fn category_at(&self, at: UnixMs) -> Category {
        let n = self.history.partition_point(|s| s.from <= at);
        if n == 0 {
            let first = &self.history[0];
            first.previous.unwrap_or(first.category)
        } else {
            self.history[n - 1].category
        }
    }
}

/// How an `outbound` event names its template.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum TemplateRef<'a> {
    Id(Cow<'a, str>),
    NameLanguage {
        name: Cow<'a, str>,
        language: Cow<'a, str>,
    },
}

impl fmt::Display for TemplateRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateRef::Id(id) => write!(f, "template id {id}"),
            TemplateRef::NameLanguage { name, language } => {
                write!(f, "template '{name}' ({language})")
            }
        }
    }
}

/// Why a message naming a template could not be given a category.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("message {id}: {template} is not in the template registry of WABA {waba} (import the WABA's templates or give the message's category)")]
    UnknownTemplate {
        id: String,
        waba: String,
        template: String,
    },
    /// `names`: the two names and languages, `'a' (en_US)` and `'b' (en_US)`.
    #[error("template {template_id} of WABA {waba}: named {} by one change and {} by another", names.0, names.1)]
    ConflictingTemplate {
        waba: String,
        template_id: String,
        names: Box<(String, String)>,
    },
}

impl TemplateError {
    pub fn code(&self) -> &'static str {
        match self {
            TemplateError::UnknownTemplate { .. } => "unknown_template",
            TemplateError::ConflictingTemplate { .. } => "conflicting_template",
        }
    }
}

/// Every template of every WABA, by (WABA, template id).
#[derive(Clone, Default, Debug)]
pub struct Registry {
    templates: BTreeMap<(String, String), Template>,
    /// (WABA, name, language) → template id.
    names: BTreeMap<(String, String, String), String>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a registry from changes in any order; the result does not depend on it.
    pub fn from_changes<'c, 'a: 'c>(
        changes: impl IntoIterator<Item = &'c TemplateChange<'a>>,
    ) -> (Registry, Vec<TemplateError>) {
        let mut r = Registry::new();
        let mut errors = Vec::new();
        for c in changes {
            if let Err(e) = r.apply(c) {
                errors.push(e);
            }
        }
        errors.sort_by_cached_key(|e| e.to_string());
        errors.dedup();
        (r, errors)
    }

    /// Adds a change. The same change twice counts once; the history stays ordered by
    /// (instant, source, category), so arrival order never matters.
    pub fn apply(&mut self, c: &TemplateChange<'_>) -> Result<(), TemplateError> {
        let key = (c.waba.to_string(), c.id.to_string());
        let t = self.templates.entry(key).or_insert_with(|| Template {
            waba: c.waba.to_string(),
            id: c.id.to_string(),
            name: c.name.to_string(),
            language: c.language.to_string(),
            status: None,
            status_at: None,
            history: Vec::new(),
        });
        if t.name != c.name || t.language != c.language {
            // A template's name and language never change at Meta (D151).
            return Err(TemplateError::ConflictingTemplate {
                waba: t.waba.clone(),
                template_id: t.id.clone(),
                names: Box::new((
                    format!("'{}' ({})", t.name, t.language),
                    format!("'{}' ({})", c.name, c.language),
                )),
            });
        }
        let span = CategorySpan {
            from: c.at,
            source: c.source,
            category: c.category,
            previous: c.previous,
        };
        if let Err(pos) = t.history.binary_search(&span) {
            t.history.insert(pos, span);
        }
        if let Some(s) = &c.status {
            let when = (c.at, c.source);
            if t.status_at
                .is_none_or(|w| w < when || (w == when && t.status.as_deref() < Some(s)))
            {
                t.status = Some(s.to_string());
                t.status_at = Some(when);
            }
        }
        self.names.insert(
            (
                c.waba.to_string(),
                c.name.to_string(),
                c.language.to_string(),
            ),
            c.id.to_string(),
        );
        Ok(())
    }

    pub fn get(&self, waba: &str, r: &TemplateRef<'_>) -> Option<&Template> {
        let id = match r {
            TemplateRef::Id(id) => id.as_ref(),
            TemplateRef::NameLanguage { name, language } => {
                self.names
                    .get(&(waba.to_string(), name.to_string(), language.to_string()))?
            }
        };
        self.templates.get(&(waba.to_string(), id.to_string()))
    }

    /// Every template, by (WABA, id).
    pub fn iter(&self) -> impl Iterator<Item = &Template> {
        self.templates.values()
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }
}

/// Gives every `outbound` event that names its template (`refs`: the index of the event in
/// `events` and the template it names) the category in force at its send instant. Other events
/// are not touched. Returns the messages whose template is unknown.
pub fn resolve(
    events: &mut [Event<'_>],
    refs: &[(usize, TemplateRef<'_>)],
    registry: &Registry,
) -> Vec<TemplateError> {
    let mut errors = Vec::new();
    for (i, r) in refs {
        let Some(Event::Outbound(o)) = events.get_mut(*i) else {
            continue;
        };
        match registry.get(&o.waba, r) {
            Some(t) => o.kind = MessageKind::Template(t.category_at(o.at)),
            None => errors.push(TemplateError::UnknownTemplate {
                id: o.id.to_string(),
                waba: o.waba.to_string(),
                template: r.to_string(),
            }),
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(
        id: &'static str,
        category: Category,
        previous: Option<Category>,
        at: i64,
        source: ChangeSource,
    ) -> TemplateChange<'static> {
        TemplateChange {
            waba: "W1".into(),
            id: id.into(),
            name: "order_update".into(),
            language: "en_US".into(),
            category,
            previous,
            at,
            source,
            status: None,
        }
    }

    #[test]
    fn the_category_in_force_follows_the_history_whatever_the_order() {
        let changes = [
            change("1", Category::Marketing, None, 5_000, ChangeSource::Import),
            change(
                "1",
                Category::Marketing,
                Some(Category::Utility),
                2_000,
                ChangeSource::Webhook,
            ),
            change("1", Category::Utility, None, 9_000, ChangeSource::Webhook),
        ];
        let mut reversed = changes.clone();
        reversed.reverse();
        for order in [&changes[..], &reversed[..]] {
            let (r, errors) = Registry::from_changes(order);
            assert!(errors.is_empty());
            let t = r.get("W1", &TemplateRef::Id("1".into())).unwrap();
            // Before the re-categorisation: the category it replaced.
            assert_eq!(t.category_at(1_999), Category::Utility);
            assert_eq!(t.category_at(2_000), Category::Marketing);
            assert_eq!(t.category_at(8_999), Category::Marketing);
            assert_eq!(t.category_at(9_000), Category::Utility);
            assert_eq!(t.history.len(), 3);
        }
    }

    #[test]
    fn before_the_first_change_without_previous_the_oldest_known_category_holds() {
        let (r, _) = Registry::from_changes(&[change(
            "1",
            Category::Authentication,
            None,
            5_000,
            ChangeSource::Import,
        )]);
        let t = r
            .get(
                "W1",
                &TemplateRef::NameLanguage {
                    name: "order_update".into(),
                    language: "en_US".into(),
                },
            )
            .unwrap();
        assert_eq!(t.category_at(0), Category::Authentication);
        assert!(r
            .get(
                "W1",
                &TemplateRef::NameLanguage {
                    name: "order_update".into(),
                    language: "pt_BR".into(),
                },
            )
            .is_none());
        assert!(r.get("W2", &TemplateRef::Id("1".into())).is_none());
    }

    #[test]
    fn repeats_count_once_and_a_renamed_id_is_a_conflict() {
        let c = change("1", Category::Utility, None, 1, ChangeSource::Import);
        let mut renamed = c.clone();
        renamed.name = "other".into();
        let (r, errors) = Registry::from_changes(&[c.clone(), c, renamed]);
        assert_eq!(r.iter().next().unwrap().history.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code(), "conflicting_template");
    }
}
