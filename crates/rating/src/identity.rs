//! Who a message's user is. A user may be known by phone number, by business-scoped user id
//! (BSUID), or both; every event that carries two identities of one person (a phone and a BSUID,
//! or an old and a new identity of an identity change) links them, and the rating keeps one
//! state per person: all the identities linked, directly or through others, over the whole set
//! of events rated (decisions.md D101). The links are a function of the set, never of the
//! order of the events, so the charges stay so too.
//!
//! A person is a 64-bit key: the smallest phone number among its identities, or, for a person
//! known by BSUIDs only, a bit above any number and the person's rank among those (by their
//! smallest BSUID). Everything is computed before the walk; looking a person up allocates
//! nothing, and a set of events without BSUIDs skips it all.

use crate::event::{Bsuid, Event, Msisdn};
use rustc_hash::FxHashMap;

/// Set in the key of a person known by BSUIDs only (phone numbers are below 10¹⁵ < 2⁵⁰).
pub(crate) const BSUID_PERSON: u64 = 1 << 63;

/// The persons of a set of events.
#[derive(Default)]
pub(crate) struct Identities<'e> {
    /// Phone numbers linked to another identity → person.
    phones: FxHashMap<u64, u64>,
    /// BSUID → (person, the smallest phone number it was given with).
    bsuids: FxHashMap<&'e str, (u64, Option<Msisdn>)>,
}

/// A phone number or a BSUID, as a node of the union-find.
#[derive(Clone, Copy)]
enum Node<'e> {
    Phone(u64),
    Bsuid(&'e str),
}

impl<'e> Identities<'e> {
    /// Links the identities of `events` (only those of events with a BSUID or an identity
    /// change: an event with a phone number alone links nothing).
    pub(crate) fn build(events: impl Iterator<Item = &'e Event<'e>>) -> Identities<'e> {
        let mut uf = UnionFind::default();
        for e in events {
            match e {
                Event::Inbound(x) => {
                    if x.user_id.is_none() && x.change.is_none() {
                        continue;
                    }
                    let old = uf.link(x.user, x.user_id.as_ref());
                    if let Some(c) = &x.change {
                        let new = uf.link(c.user, c.user_id.as_ref());
                        if let (Some(a), Some(b)) = (old, new) {
                            uf.union(a, b);
                        }
                    }
                }
                Event::Outbound(x) => {
                    if x.user_id.is_some() {
                        uf.link(x.user, x.user_id.as_ref());
                    }
                }
                // A status names its recipient by number and BSUID alike (decisions.md D110).
                Event::Status(x) => {
                    if let Some(m) = x.message.as_deref().filter(|m| m.user_id.is_some()) {
                        uf.link(m.user, m.user_id.as_ref());
                    }
                }
                Event::Account(_) => {}
            }
        }
        uf.persons()
    }

    /// The person of an event's user. Without BSUIDs in the set, the user's number: that case
    /// is inlined into the walk, the rest is not.
    #[inline(always)]
    pub(crate) fn person(&self, user: Option<Msisdn>, user_id: Option<&Bsuid<'_>>) -> u64 {
        match user {
            Some(u) if self.phones.is_empty() => u.get(),
            _ => self.linked_person(user, user_id),
        }
    }

    #[inline(never)]
    fn linked_person(&self, user: Option<Msisdn>, user_id: Option<&Bsuid<'_>>) -> u64 {
        if let Some(u) = user {
            return self.phones.get(&u.get()).copied().unwrap_or(u.get());
        }
        match user_id {
            Some(b) => self.bsuids.get(b.as_str()).map_or(0, |p| p.0),
            // Events always name their user (the parsers see to it); no one is person 0.
            None => 0,
        }
    }

    /// The phone number whose country decides the market of a message to this user: its own,
    /// else the one its BSUID was given with (decisions.md D102). None: the BSUID's own prefix.
    #[inline]
    pub(crate) fn market_phone(
        &self,
        user: Option<Msisdn>,
        user_id: Option<&Bsuid<'_>>,
    ) -> Option<Msisdn> {
        user.or_else(|| self.bsuids.get(user_id?.as_str())?.1)
    }

    /// Bytes held, for `StateStats`.
    pub(crate) fn bytes(&self) -> u64 {
        (self.phones.capacity() * (std::mem::size_of::<(u64, u64)>() + 1)
            + self.bsuids.capacity() * (std::mem::size_of::<(&str, (u64, Option<Msisdn>))>() + 1))
            as u64
    }
}

#[derive(Default)]
struct UnionFind<'e> {
    phone_node: FxHashMap<u64, u32>,
    bsuid_node: FxHashMap<&'e str, u32>,
    nodes: Vec<Node<'e>>,
    parent: Vec<u32>,
    /// Per BSUID node: the smallest phone number it was given with.
    bsuid_phone: Vec<Option<Msisdn>>,
}

impl<'e> UnionFind<'e> {
    fn node(&mut self, n: Node<'e>) -> u32 {
        let next = self.nodes.len() as u32;
        let (i, new) = match n {
            Node::Phone(p) => {
                let i = *self.phone_node.entry(p).or_insert(next);
                (i, i == next)
            }
            Node::Bsuid(b) => {
                let i = *self.bsuid_node.entry(b).or_insert(next);
                (i, i == next)
            }
        };
        if new {
            self.nodes.push(n);
            self.parent.push(i);
            self.bsuid_phone.push(None);
        }
        i
    }

    /// Links one identity's phone and BSUID (either may be absent); returns a node of it.
    fn link(&mut self, user: Option<Msisdn>, user_id: Option<&'e Bsuid<'e>>) -> Option<u32> {
        let p = user.map(|u| self.node(Node::Phone(u.get())));
        let b = user_id.map(|b| self.node(Node::Bsuid(b.as_str())));
        if let (Some(p), Some(b)) = (p, b) {
            self.union(p, b);
            let u = user.expect("a phone node has a phone");
            let slot = &mut self.bsuid_phone[b as usize];
            if slot.is_none_or(|old| u < old) {
                *slot = Some(u);
            }
        }
        p.or(b)
    }

    fn find(&mut self, mut i: u32) -> u32 {
        while self.parent[i as usize] != i {
            let up = self.parent[self.parent[i as usize] as usize];
            self.parent[i as usize] = up;
            i = up;
        }
        i
    }

    fn union(&mut self, a: u32, b: u32) {
        let (a, b) = (self.find(a), self.find(b));
        if a != b {
            // Which root wins changes nothing: a person's key is chosen from its members.
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            self.parent[hi as usize] = lo;
        }
    }

    fn persons(mut self) -> Identities<'e> {
        let n = self.nodes.len();
        // Per root: the smallest phone and the smallest BSUID of its members.
        let mut min_phone: Vec<Option<u64>> = vec![None; n];
        let mut min_bsuid: Vec<Option<&'e str>> = vec![None; n];
        let root: Vec<u32> = (0..n as u32).map(|i| self.find(i)).collect();
        for (i, &r) in root.iter().enumerate() {
            match self.nodes[i] {
                Node::Phone(p) => {
                    let m = &mut min_phone[r as usize];
                    if m.is_none_or(|old| p < old) {
                        *m = Some(p);
                    }
                }
                Node::Bsuid(b) => {
                    let m = &mut min_bsuid[r as usize];
                    if m.is_none_or(|old| b < old) {
                        *m = Some(b);
                    }
                }
            }
        }
        // Persons with BSUIDs only, ranked by their smallest BSUID: a key that depends on the
        // set of identities, not on the order they were met in.
        let mut bsuid_only: Vec<(&'e str, u32)> = (0..n)
            .filter(|&r| root[r] == r as u32 && min_phone[r].is_none())
            .filter_map(|r| min_bsuid[r].map(|b| (b, r as u32)))
            .collect();
        bsuid_only.sort_unstable();
        let mut key = vec![0u64; n];
        for (rank, &(_, r)) in bsuid_only.iter().enumerate() {
            key[r as usize] = BSUID_PERSON | rank as u64;
        }
        for r in 0..n {
            if let Some(p) = min_phone[r] {
                key[r] = p;
            }
        }
        let mut out = Identities::default();
        for (i, node) in self.nodes.iter().enumerate() {
            let k = key[root[i] as usize];
            match *node {
                Node::Phone(p) => {
                    out.phones.insert(p, k);
                }
                Node::Bsuid(b) => {
                    out.bsuids.insert(b, (k, self.bsuid_phone[i]));
                }
            }
        }
        out
    }
}
