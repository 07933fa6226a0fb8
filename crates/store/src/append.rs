//! The backend-independent half of appending events: deduplicating a batch in memory, and
//! turning what the database already held into the duplicates, conflicts and sequence numbers
//! of an [`AppendResult`]. Both backends insert the planned candidates in batch order and
//! number the new ones `base + 1, base + 2, ...`, so this module can assign the seqs.

use crate::error::StoreError;
use crate::rows::{AppendResult, EventKind, MetaMessageRow, NewEvent};
use rustc_hash::FxHashMap;

/// A batch, reduced to the events that may be new.
pub(crate) struct Plan {
    /// Positions in the batch of the first event of each key, in batch order.
    pub candidates: Vec<usize>,
    pub duplicates: usize,
    pub conflicts: Vec<(usize, String)>,
}

/// A candidate the database already held, found by a backend.
pub(crate) struct Existing {
    /// Position in `Plan::candidates`.
    pub candidate: usize,
    /// Whether the stored raw bytes equal the candidate's.
    pub same: bool,
}

pub(crate) fn describe(e: &NewEvent) -> String {
    match &e.status {
        Some(s) => format!("status '{}' of '{}'", s, e.id),
        None => format!("{} '{}'", e.kind.as_str(), e.id),
    }
}

/// Deduplicates a batch by key and refuses what does not belong in it.
pub(crate) fn plan(events: &[NewEvent]) -> Result<Plan, StoreError> {
    let mut first: FxHashMap<(EventKind, &str, &str), usize> = FxHashMap::default();
    first.reserve(events.len());
    let mut plan = Plan {
        candidates: Vec::with_capacity(events.len()),
        duplicates: 0,
        conflicts: Vec::new(),
    };
    for (i, e) in events.iter().enumerate() {
        if e.kind == EventKind::Account {
            return Err(StoreError::Invalid {
                table: "events",
                why: format!(
                    "event {i} of the batch is an account ('{}'): accounts are versioned by WABA \
                     and recorded with record_accounts",
                    e.id
                ),
            });
        }
        match first.entry((e.kind, e.id.as_str(), e.status_key())) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
                plan.candidates.push(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let j = *o.get();
                if events[j].raw == e.raw {
                    plan.duplicates += 1;
                } else {
                    plan.conflicts.push((
                        i,
                        format!(
                            "{} repeats event {j} of this batch with different content",
                            describe(e)
                        ),
                    ));
                }
            }
        }
    }
    Ok(plan)
}

/// Builds the result once the candidates are inserted: `existing` are the candidates the
/// database already had (in any order); the others got `base + 1, base + 2, ...` in order.
pub(crate) fn finish(
    events: &[NewEvent],
    plan: Plan,
    mut existing: Vec<Existing>,
    base: u64,
) -> AppendResult {
    existing.sort_unstable_by_key(|x| x.candidate);
    let mut result = AppendResult {
        inserted: Vec::with_capacity(plan.candidates.len() - existing.len()),
        inserted_at: Vec::with_capacity(plan.candidates.len() - existing.len()),
        duplicates: plan.duplicates,
        conflicts: plan.conflicts,
    };
    let mut next = base;
    let mut old = existing.iter().peekable();
    for (c, &i) in plan.candidates.iter().enumerate() {
        match old.peek() {
            Some(x) if x.candidate == c => {
                if x.same {
                    result.duplicates += 1;
                } else {
                    result.conflicts.push((
                        i,
                        format!(
                            // No seq: it is global, and would tell a scoped key how much
                            // others store.
                            "{} is already stored with different content",
                            describe(&events[i])
                        ),
                    ));
                }
                old.next();
            }
            _ => {
                next += 1;
                result.inserted.push(next);
                result.inserted_at.push(i);
            }
        }
    }
    result.conflicts.sort_unstable_by_key(|c| c.0);
    result
}

/// The descriptions to record with a batch (decisions.md D114): those whose status is stored
/// now or was already, with the same bytes; not those of a status refused as a conflict.
pub(crate) fn recordable<'a>(
    events: &[NewEvent],
    plan: &Plan,
    existing: &[Existing],
    described: &'a [(usize, MetaMessageRow)],
) -> Result<Vec<&'a MetaMessageRow>, StoreError> {
    if described.is_empty() {
        return Ok(Vec::new());
    }
    let mut refused: rustc_hash::FxHashSet<usize> = plan.conflicts.iter().map(|c| c.0).collect();
    refused.extend(
        existing
            .iter()
            .filter(|x| !x.same)
            .map(|x| plan.candidates[x.candidate]),
    );
    let mut out = Vec::with_capacity(described.len());
    for (pos, row) in described {
        let fits = events.get(*pos).is_some_and(|e| {
            e.kind == EventKind::Status
                && e.id == row.id
                && e.status.as_deref() == Some(row.status.as_str())
        });
        if !fits {
            return Err(StoreError::Invalid {
                table: "meta_messages",
                why: format!(
                    "the description of status '{}' of '{}' names event {pos} of the batch, \
                     which is not that status",
                    row.status, row.id
                ),
            });
        }
        if !refused.contains(pos) {
            out.push(row);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(id: &str, raw: &str) -> NewEvent {
        NewEvent::outbound(id, 1, "W", "1", "2", raw)
    }

    #[test]
    fn batch_repeats_are_duplicates_or_conflicts() {
        let events = [
            out("a", "x"),
            out("a", "x"),
            out("a", "y"),
            NewEvent::inbound("a", 1, "W", "1", "2", "x"),
            NewEvent::status("a", "read", 1, "s"),
            NewEvent::status("a", "delivered", 1, "s"),
            NewEvent::status("a", "read", 1, "s"),
        ];
        let p = plan(&events).unwrap();
        assert_eq!(p.candidates, vec![0, 3, 4, 5]);
        assert_eq!(p.duplicates, 2);
        assert_eq!(p.conflicts.len(), 1);
        assert_eq!(p.conflicts[0].0, 2);

        let r = finish(
            &events,
            p,
            vec![Existing {
                candidate: 1,
                same: false,
            }],
            10,
        );
        assert_eq!(r.inserted, vec![11, 12, 13]);
        assert_eq!(r.inserted_at, vec![0, 4, 5]);
        assert_eq!(r.duplicates, 2);
        assert_eq!(
            r.conflicts.iter().map(|c| c.0).collect::<Vec<_>>(),
            vec![2, 3]
        );
    }
}
