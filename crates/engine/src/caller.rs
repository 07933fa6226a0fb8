//! Who calls, and what they may see: the caller behind an API key, its role and the WABAs of
//! its tenant scope. Every read, write and send check asks [`Caller::may_see`] of each WABA it
//! is about to touch (decisions.md D50); the HTTP crate builds a `Caller` from the bearer key.

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use wabill_billing::TenantSetup;
use wabill_rating::Event;
use wabill_store::{MetaPricingRow, Role, Store, StoreError};

/// The caller of an API key (from `Authorization: Bearer KEY`), or the service itself.
#[derive(Clone, Debug)]
pub struct Caller {
    pub role: Role,
    /// None: every WABA (admin).
    pub wabas: Option<Vec<String>>,
    /// The API key's id; `None` for the service's own calls.
    pub key_id: Option<i64>,
    /// The API key's name, for the audit log.
    pub key_name: Option<String>,
}

impl Caller {
    /// An admin: every WABA (the service's own reads, and tests).
    pub fn admin() -> Caller {
        Caller {
            role: Role::Admin,
            wabas: None,
            key_id: None,
            key_name: None,
        }
    }

    /// Who this caller is in the audit log: `key:<id>:<name>`, or `service` for the service's
    /// own calls.
    pub fn actor(&self) -> String {
        match (self.key_id, &self.key_name) {
            (Some(id), Some(name)) => format!("key:{id}:{name}"),
            (Some(id), None) => format!("key:{id}"),
            _ => "service".to_string(),
        }
    }

    /// Whether this caller may read or write what belongs to `waba`. This is the one test of
    /// tenant scope: every route, ingest and the send check ask it of each WABA they are about to
    /// read, write or answer from (decisions.md D50).
    pub fn may_see(&self, waba: &str) -> bool {
        self.wabas
            .as_ref()
            .is_none_or(|w| w.iter().any(|x| x == waba))
    }

    /// Admin keys see every tenant; a reader or sender key sees a tenant whose every WABA is in
    /// its scope (a tenant without WABAs only to admins), so that no invoice shows it usage of a
    /// WABA it may not read.
    pub fn may_read(&self, setup: &TenantSetup) -> bool {
        match &self.wabas {
            None => true,
            Some(_) => {
                !setup.tenant.wabas.is_empty() && setup.tenant.wabas.iter().all(|w| self.may_see(w))
            }
        }
    }
}

/// The hash under which an API key is stored and looked up (the key itself is never kept).
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// An item of a batch the caller's scope refused: the item's index, the field, and why. The
/// reason names neither another tenant's WABA nor anything stored of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub index: usize,
    pub field: &'static str,
    pub reason: String,
}

/// What a caller may write of a batch, and what it may not.
#[derive(Debug)]
pub struct Admitted<'a> {
    pub events: Vec<(usize, Event<'a>)>,
    pub pricing: Vec<MetaPricingRow>,
    pub refused: Vec<Refusal>,
}

/// Sorts a batch (events and Meta's pricing rows, each with the index of the item that carried
/// it) into what `caller` may write and what it may not, item by item:
/// - an account, inbound or outbound event of a WABA outside the scope;
/// - Meta's pricing of a WABA outside the scope (or of no named WABA, for a scoped key);
/// - a status, or Meta's pricing, of a message that is neither in the batch nor stored under one
///   of the caller's WABAs (decisions.md D46, D50). Only this last needs the store: the ids are
///   looked up once, together.
pub async fn admit<'a>(
    caller: &Caller,
    store: &dyn Store,
    events: Vec<(usize, Event<'a>)>,
    pricing: Vec<(usize, MetaPricingRow)>,
) -> Result<Admitted<'a>, StoreError> {
    let mut refused = Vec::new();
    let mut refuse = |index: usize, field: &'static str, reason: &str| {
        refused.push(Refusal {
            index,
            field,
            reason: reason.to_string(),
        })
    };
    let mut pricing: Vec<(usize, MetaPricingRow)> = pricing
        .into_iter()
        .filter(|(i, row)| {
            let visible = match &row.waba {
                Some(w) => caller.may_see(w),
                None => caller.role == Role::Admin,
            };
            if !visible {
                refuse(
                    *i,
                    "entry.id",
                    "this key may not send Meta's pricing for that WABA",
                );
            }
            visible
        })
        .collect();
    let mut batch: Vec<(usize, Event<'a>)> = events
        .into_iter()
        .filter(|(i, e)| {
            let waba = match e {
                Event::Account(a) => Some(a.waba.as_ref()),
                Event::Inbound(x) => Some(x.waba.as_ref()),
                Event::Outbound(x) => Some(x.waba.as_ref()),
                // A status that names its message's WABA (decisions.md D110) is that WABA's.
                Event::Status(x) => x.message.as_deref().map(|m| m.waba.as_ref()),
            };
            let ok = waba.is_none_or(|w| caller.may_see(w));
            if !ok {
                refuse(*i, "waba", "this key may not send events for that WABA");
            }
            ok
        })
        .collect();
    if let Some(wabas) = &caller.wabas {
        let own: HashSet<&str> = batch
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Outbound(o) => Some(o.id.as_ref()),
                _ => None,
            })
            .collect();
        let mut ask: Vec<String> = batch
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Status(s) => Some(s.id.as_ref()),
                _ => None,
            })
            .chain(pricing.iter().map(|(_, p)| p.id.as_str()))
            .filter(|id| !own.contains(id))
            .map(str::to_string)
            .collect();
        ask.sort_unstable();
        ask.dedup();
        let foreign: HashSet<String> = if ask.is_empty() {
            HashSet::new()
        } else {
            store
                .outbound_refs(&ask)
                .await?
                .into_iter()
                .filter(|r| !wabas.contains(&r.waba))
                .map(|r| r.id)
                .collect()
        };
        if !foreign.is_empty() {
            let reason = "no message of this key's WABAs has this id";
            batch.retain(|(i, e)| match e {
                Event::Status(s) if foreign.contains(s.id.as_ref()) => {
                    refuse(*i, "id", reason);
                    false
                }
                _ => true,
            });
            pricing.retain(|(i, p)| {
                let keep = !foreign.contains(&p.id);
                if !keep {
                    refuse(
                        *i,
                        "pricing",
                        &format!("Meta's pricing of a message: {reason}"),
                    );
                }
                keep
            });
        }
    }
    Ok(Admitted {
        events: batch,
        pricing: pricing.into_iter().map(|(_, p)| p).collect(),
        refused,
    })
}
