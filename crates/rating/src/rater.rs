//! The rater: a deterministic state machine over a set of events.
//!
//! [`rate`] deduplicates events by id, joins each outbound message with its delivery statuses,
//! orders everything by instant (inbound before outbound at the same instant, because a window
//! is open at `t` when the user wrote "at or before" `t`; then by id), and walks that timeline
//! once, keeping per (business phone, user) pair the customer service window, the free entry
//! point window and any CBP conversations, and per month the free allowances and tier counters.
//! Because the timeline is a function of the *set* of events, the charges are too.

use crate::event::{
    Account, Bsuid, DeliveryStatus, Event, Inbound, MessageKind, Msisdn, Outbound, Status,
    StatusMessage,
};
use crate::identity::{Identities, BSUID_PERSON};
use crate::markets::{CountryId, MarketId};
use crate::model::{Category, Era, PricingModel, PricingType};
use crate::money::{Currency, Decimal};
use crate::rates::{RateKey, TierRange};
use crate::tariff::Tariff;
use crate::time::{Date, LocalCalendar, Month, UnixMs, DAY_MS, HOUR_MS};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Length of a customer service window and of a CBP conversation.
pub const WINDOW_MS: UnixMs = DAY_MS;
/// Length of a free entry point window (and CBP free entry point conversation).
pub const FEP_WINDOW_MS: UnixMs = 72 * HOUR_MS;
/// Free service conversations per WABA per month under CBP until 2024-10-31.
pub const CBP_FREE_SERVICE_CONVERSATIONS: u32 = 1_000;
/// Free delivered service messages per business phone number per month from 2026-10-01.
pub const FREE_SERVICE_MESSAGES: u32 = 1_000;

#[derive(Clone, Copy, Debug, Default)]
pub struct RateOptions {
    /// Rate messages with no delivery status as delivered at their send instant (unless failed).
    pub assume_delivered: bool,
}

/// What one outbound message cost, and why. One per outbound message, free ones too.
#[derive(Clone, Debug, PartialEq)]
pub struct Charge<'e> {
    pub id: &'e str,
    pub sent_at: UnixMs,
    pub waba: &'e str,
    pub phone: Msisdn,
    /// The user as the outbound event named them: phone number, BSUID, or both.
    pub user: Option<Msisdn>,
    pub user_id: Option<&'e str>,
    pub country: CountryId,
    pub market: MarketId,
    pub pricing_model: PricingModel,
    pub category: Category,
    pub pricing_type: PricingType,
    pub tier: Option<TierRange>,
    pub rate: Option<Decimal>,
    pub amount: Decimal,
    pub currency: Currency,
    pub billed_at: Option<UnixMs>,
    pub conversation_id: Option<&'e str>,
    /// The outbound event's `agent`, carried for tenant billing; never used for pricing.
    pub agent: Option<&'e str>,
}

impl Charge<'_> {
    /// True exactly when the amount is greater than zero.
    pub fn billable(&self) -> bool {
        self.amount.is_positive()
    }
    /// The charge line's `user`: the phone number when the message named one, else its BSUID
    /// (decisions.md D104).
    pub fn user_text(&self) -> std::borrow::Cow<'_, str> {
        match (self.user, self.user_id) {
            (Some(u), _) => u.to_string().into(),
            (None, Some(b)) => b.into(),
            (None, None) => "".into(),
        }
    }
}

/// Why a message (or an account) could not be rated. Stable codes, see [`RatingError::code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    #[error(
        "message {id}: WABA '{waba}' has no account (give it with an account event or --accounts)"
    )]
    UnknownAccount { id: String, waba: String },
    #[error("account '{waba}': {why}")]
    InvalidAccount { waba: String, why: String },
    #[error("account '{waba}' is given twice with different fields")]
    ConflictingAccount { waba: String },
    #[error("id '{id}' is used by two different {kind} events")]
    ConflictingDuplicate { id: String, kind: &'static str },
    #[error("message {id}: known from Meta's statuses only, and none of them gives pricing.category, so its category is unknown (give its outbound event)")]
    UnknownCategory { id: String },
    #[error("message {id}: sent on {date} (WABA time), before 2023-06-01; pricing before conversation categories is not supported")]
    UnsupportedDate { id: String, date: Date },
    #[error("message {id}: no country has a calling code that starts {user}")]
    UnknownCountry { id: String, user: Msisdn },
    #[error("message {id}: the user's BSUID starts with '{country}', which is not a country of markets.csv (and no phone number of the user is known)")]
    UnknownUserIdCountry { id: String, country: String },
    #[error("message {id}: country {country} has no market on {date}")]
    NoMarket {
        id: String,
        country: String,
        date: Date,
    },
    #[error("message {id}: no {model} rate for currency {currency}, market '{market}', category {category} on {date}{detail}")]
    MissingRate {
        id: String,
        currency: Currency,
        model: &'static str,
        market: String,
        category: &'static str,
        date: Date,
        /// Empty, or why in parentheses: no tier holds the message, or the version in force is
        /// a known gap (its date and reason).
        detail: String,
    },
}

impl RatingError {
    pub fn code(&self) -> &'static str {
        match self {
            RatingError::UnknownAccount { .. } => "unknown_account",
            RatingError::InvalidAccount { .. } => "invalid_account",
            RatingError::ConflictingAccount { .. } => "conflicting_account",
            RatingError::ConflictingDuplicate { .. } => "conflicting_duplicate",
            RatingError::UnknownCategory { .. } => "unknown_category",
            RatingError::UnsupportedDate { .. } => "unsupported_date",
            RatingError::UnknownCountry { .. } | RatingError::UnknownUserIdCountry { .. } => {
                "unknown_country"
            }
            RatingError::NoMarket { .. } => "unknown_market",
            RatingError::MissingRate { .. } => "missing_rate",
        }
    }
}

/// Things worth telling the user that are not errors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notes {
    /// Events repeated with the same id (and the same content), counted once.
    pub duplicates: u64,
    /// Statuses whose message has no outbound event: nothing to rate them against.
    pub orphan_statuses: u64,
    /// Delivered non-template messages sent when no customer service window was open in the
    /// input (Meta only delivers them inside one: an inbound is probably missing).
    pub non_template_outside_window: u64,
    /// Messages rated from Meta's status webhooks alone (no outbound event), decisions.md D110.
    pub from_statuses: u64,
    /// Of those, messages with no `sent` status: sent at their earliest status (D111).
    pub sent_missing: u64,
    /// Messages whose outbound event's template category differs from the category Meta's
    /// statuses bill them in: rated in Meta's (D112).
    pub category_overridden: u64,
}

/// Size of the rater's state after a run, for capacity planning and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateStats {
    /// (business phone, user) pairs seen.
    pub pairs: u64,
    /// Bytes held by the per-pair table (entries and control bytes, at its current capacity).
    pub pair_bytes: u64,
    /// Bytes held by everything else: open CBP conversations, monthly counters, id tables.
    pub other_bytes: u64,
}

/// The result of rating a set of events: charges in (send instant, id) order, errors, notes.
#[derive(Debug, Default)]
pub struct Rated<'e> {
    pub charges: Vec<Charge<'e>>,
    pub errors: Vec<RatingError>,
    pub notes: Notes,
    pub state: StateStats,
}

/// Rates a set of events. Accounts may be among the events or given separately.
pub fn rate<'e>(
    tariff: &Tariff,
    accounts: &'e [Account<'e>],
    events: &'e [Event<'e>],
    opts: RateOptions,
) -> Rated<'e> {
    rate_chunks(tariff, accounts, &[events], opts)
}

/// Rates a set of events given in several slices (as parsed in parallel, for instance), as
/// [`rate`] rates them joined, without joining them.
pub fn rate_chunks<'e>(
    tariff: &Tariff,
    accounts: &'e [Account<'e>],
    chunks: &[&'e [Event<'e>]],
    opts: RateOptions,
) -> Rated<'e> {
    let ends = chunk_ends(chunks);
    let events = Events {
        chunks,
        ends: &ends,
    };
    let keys = ChunkKeys::build(events, bucket_bits(events.len()));
    rate_events(tariff, accounts, events, vec![keys], opts)
}

/// Rates chunks of events as [`rate_chunks`] does, with the join keys of each chunk computed
/// beforehand by [`ChunkKeys::new`] (on the threads that parsed the chunks, for instance): the
/// rating itself then never reads an id but to break ties of instant.
///
/// # Panics
///
/// When `keys` are not those of `chunks`, one per chunk in the same order.
pub fn rate_keyed_chunks<'e>(
    tariff: &Tariff,
    accounts: &'e [Account<'e>],
    chunks: &[&'e [Event<'e>]],
    keys: Vec<ChunkKeys>,
    opts: RateOptions,
) -> Rated<'e> {
    assert!(
        keys.len() == chunks.len() && keys.iter().zip(chunks).all(|(k, c)| k.events == c.len()),
        "join keys of other events"
    );
    let ends = chunk_ends(chunks);
    let events = Events {
        chunks,
        ends: &ends,
    };
    rate_events(tariff, accounts, events, keys, opts)
}

/// Index one past each chunk's last event.
fn chunk_ends(chunks: &[&[Event<'_>]]) -> Vec<u32> {
    let mut ends = Vec::with_capacity(chunks.len());
    let mut total = 0usize;
    for c in chunks {
        total += c.len();
        assert!(
            total < u32::MAX as usize,
            "more events than one batch holds"
        );
        ends.push(total as u32);
    }
    ends
}

/// Rates `events`, of which `keys` hold the join keys, part after part in order. Never inlined:
/// it runs once per batch, and profiles then show the rating core under this one name.
#[inline(never)]
fn rate_events<'e>(
    tariff: &Tariff,
    accounts: &'e [Account<'e>],
    events: Events<'_, 'e>,
    keys: Vec<ChunkKeys>,
    opts: RateOptions,
) -> Rated<'e> {
    let mut out = Rated::default();
    let mut machine = Machine::new(tariff, opts);
    if keys.iter().any(|k| k.identities) {
        machine.ids = Identities::build(events.iter());
    }
    for acc in collect_accounts(accounts, events, &keys, &mut out).values() {
        if let Err(e) = machine.add_account(acc) {
            out.errors.push(e);
        }
    }
    let mut timeline = Timeline::build(events, keys, &machine.account_ids, &mut out);
    out.charges.reserve(timeline.outbound_count);
    let steps = &mut timeline.steps[..];
    // Steps from `i` to `tied_to` are in their final order.
    let mut tied_to = 0;
    let mut pairs_ahead = Vec::with_capacity(LOOK_AHEAD);
    for i in 0..steps.len() {
        if i % LOOK_AHEAD == 0 {
            // Only for the cache: the pair table is larger than it, and the walk would
            // otherwise wait for every step's event and pair in turn.
            let ahead = &steps[i..(i + LOOK_AHEAD).min(steps.len())];
            std::hint::black_box(machine.look_ahead(ahead, events, &mut pairs_ahead));
        }
        if i >= tied_to {
            let (at, rank) = (steps[i].at, steps[i].kind.rank());
            let mut j = i + 1;
            while j < steps.len() && steps[j].at == at && steps[j].kind.rank() == rank {
                j += 1;
            }
            if j - i > 1 {
                // The ids' first bytes decide almost every tie without reading the ids.
                steps[i..j].sort_unstable_by(|a, b| {
                    a.id_prefix
                        .cmp(&b.id_prefix)
                        .then_with(|| event_id(events.get(a.idx)).cmp(event_id(events.get(b.idx))))
                });
            }
            tied_to = j;
        }
        let step = &steps[i];
        match step.kind {
            StepKind::Inbound => {
                let Event::Inbound(ib) = events.get(step.idx) else {
                    unreachable!()
                };
                machine.inbound(ib);
            }
            StepKind::Outbound | StepKind::FromStatus => {
                let sent = match events.get(step.idx) {
                    Event::Outbound(ob) => {
                        let mut sent = Sent::of_outbound(ob);
                        if step.meta_kind != 0 {
                            // Meta's billed template category wins (D112).
                            if let Some((kind, _)) = decode_kind(step.meta_kind) {
                                sent.kind = kind;
                            }
                        }
                        sent
                    }
                    Event::Status(st) => {
                        let (kind, mm) = decode_kind(step.meta_kind).expect("chosen with a kind");
                        Sent::of_status(st, kind, mm)
                    }
                    _ => unreachable!("an outbound step is an outbound or a status event"),
                };
                let delivery = Delivery {
                    delivered_at: (step.delivered_at != NEVER).then_some(step.delivered_at),
                    failed: step.failed,
                };
                match machine.outbound(step.idx, step.account, sent, delivery, events) {
                    Ok(c) => out.charges.push(c),
                    Err(e) => out.errors.push(e),
                }
            }
            StepKind::Status | StepKind::Dropped => {
                unreachable!("statuses are folded into their outbound step")
            }
        }
    }
    out.notes.non_template_outside_window = machine.non_template_outside_window;
    out.state = machine.stats();
    out.notes.orphan_statuses = timeline.orphan_statuses;
    out.notes.from_statuses = timeline.from_statuses;
    out.notes.sent_missing = timeline.sent_missing;
    out.notes.category_overridden = timeline.category_overridden;
    out
}

/// An outbound message as the walk rates it: from its outbound event, or from the status
/// webhook that stands for it (D110).
#[derive(Clone, Copy)]
struct Sent<'e> {
    id: &'e str,
    at: UnixMs,
    waba: &'e str,
    phone: Msisdn,
    user: Option<Msisdn>,
    user_id: Option<&'e Bsuid<'e>>,
    kind: MessageKind,
    marketing_messages_api: bool,
    agent: Option<&'e str>,
}

impl<'e> Sent<'e> {
    #[inline]
    fn of_outbound(o: &'e Outbound<'e>) -> Self {
        Sent {
            id: o.id.as_ref(),
            at: o.at,
            waba: o.waba.as_ref(),
            phone: o.phone,
            user: o.user,
            user_id: o.user_id.as_ref(),
            kind: o.kind,
            marketing_messages_api: o.marketing_messages_api,
            agent: o.agent.as_deref(),
        }
    }
    fn of_status(s: &'e Status<'e>, kind: MessageKind, marketing_messages_api: bool) -> Self {
        let m: &'e StatusMessage<'e> = s.message.as_deref().expect("a status standing for it");
        Sent {
            id: s.id.as_ref(),
            at: s.at,
            waba: m.waba.as_ref(),
            phone: m.phone,
            user: m.user,
            user_id: m.user_id.as_ref(),
            kind,
            marketing_messages_api,
            agent: None,
        }
    }
}

/// The message kind a billed category stands for (D110): a `Step::meta_kind`, 0 for none.
fn encode_kind(c: Category) -> u8 {
    match c {
        Category::Marketing => 1,
        Category::Utility => 2,
        Category::Authentication | Category::AuthenticationInternational => 3,
        Category::MarketingLite => 4,
        Category::Service | Category::ReferralConversion => 5,
    }
}

fn decode_kind(k: u8) -> Option<(MessageKind, bool)> {
    Some(match k {
        1 => (MessageKind::Template(Category::Marketing), false),
        2 => (MessageKind::Template(Category::Utility), false),
        3 => (MessageKind::Template(Category::Authentication), false),
        4 => (MessageKind::Template(Category::Marketing), true),
        5 => (MessageKind::NonTemplate, false),
        _ => return None,
    })
}

/// The events, in one or more slices, indexed as if joined.
#[derive(Clone, Copy)]
struct Events<'s, 'e> {
    chunks: &'s [&'e [Event<'e>]],
    /// Index one past each chunk's last event.
    ends: &'s [u32],
}

impl<'e> Events<'_, 'e> {
    #[inline]
    fn get(&self, idx: u32) -> &'e Event<'e> {
        let (chunk, start) = match self.ends {
            [_] => (0, 0),
            ends => {
                let c = ends.partition_point(|&e| e <= idx);
                (c, if c == 0 { 0 } else { ends[c - 1] })
            }
        };
        &self.chunks[chunk][(idx - start) as usize]
    }
    fn len(&self) -> usize {
        self.ends.last().map_or(0, |&e| e as usize)
    }
    fn iter(&self) -> impl Iterator<Item = &'e Event<'e>> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

// ---------------------------------------------------------------------------------------------
// The timeline: deduplicated, joined, ordered.

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum StepKind {
    Inbound = 0,
    Outbound = 1,
    Status = 2,
    /// A repeated or conflicting inbound or outbound event, left out of the timeline.
    Dropped = 3,
    /// A status that may stand for its message, when it has no outbound event (D110).
    FromStatus = 4,
}

impl StepKind {
    /// Place at equal instants: inbound before outbound (a message from statuses is one).
    #[inline]
    fn rank(self) -> u8 {
        (self as u8).min(1)
    }
}

/// One inbound or outbound message on the timeline, with (for outbound) what its statuses say.
#[derive(Clone, Copy)]
struct Step {
    at: UnixMs,
    delivered_at: UnixMs,
    /// The id's first 8 bytes, big-endian, zero-padded: two ids whose prefixes differ compare
    /// as their prefixes do, so that ties of instant are broken without reading the ids.
    id_prefix: u64,
    idx: u32,
    /// An outbound's account: its WABA's index among those of its part of the input in
    /// [`ChunkKeys`], then the account's index in the machine (or NO_ACCOUNT). Resolved while
    /// the event's line is in the cache: the walk would miss it to read the WABA again.
    account: u32,
    kind: StepKind,
    failed: bool,
    /// The message kind Meta's statuses bill it as (`encode_kind`), or 0: set by the join for
    /// a message from statuses, and for an outbound event whose category Meta's differs from.
    meta_kind: u8,
}

const NO_ACCOUNT: u32 = u32::MAX;

/// Steps whose events and pairs the walk reads together before taking them.
const LOOK_AHEAD: usize = 64;

impl Step {
    fn new(at: UnixMs, idx: usize, id: &str, account: u32, kind: StepKind) -> Self {
        let b = id.as_bytes();
        let id_prefix = match b.first_chunk::<8>() {
            Some(first) => u64::from_be_bytes(*first),
            None => b
                .iter()
                .enumerate()
                .fold(0, |p, (i, &c)| p | u64::from(c) << (56 - 8 * i)),
        };
        Step {
            at,
            delivered_at: NEVER,
            id_prefix,
            idx: idx as u32,
            account,
            kind,
            failed: false,
            meta_kind: 0,
        }
    }
}

/// The accounts given separately and in the stream, one per WABA; a WABA given twice with
/// different fields is an error and left out.
fn collect_accounts<'e>(
    accounts: &'e [Account<'e>],
    events: Events<'_, 'e>,
    keys: &[ChunkKeys],
    out: &mut Rated<'e>,
) -> BTreeMap<&'e str, &'e Account<'e>> {
    let mut found: BTreeMap<&'e str, &'e Account<'e>> = BTreeMap::new();
    let mut conflicting = Vec::new();
    let mut first = 0;
    let in_stream = keys.iter().flat_map(|k| {
        let start = first;
        first += k.events as u32;
        k.accounts
            .iter()
            .map(move |&i| match events.get(start + i) {
                Event::Account(a) => &**a,
                _ => unreachable!("the keys list the accounts' positions"),
            })
    });
    for a in accounts.iter().chain(in_stream) {
        match found.get(a.waba.as_ref()) {
            None => {
                found.insert(a.waba.as_ref(), a);
            }
            Some(prev) if *prev == a => out.notes.duplicates += 1,
            Some(_) => conflicting.push(a.waba.as_ref()),
        }
    }
    conflicting.sort_unstable();
    conflicting.dedup();
    for waba in conflicting {
        found.remove(waba);
        out.errors.push(RatingError::ConflictingAccount {
            waba: waba.to_string(),
        });
    }
    found
}

/// What the statuses of one message say.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delivery {
    /// First `delivered` or `read` instant.
    pub delivered_at: Option<UnixMs>,
    pub failed: bool,
}

struct Timeline {
    steps: Vec<Step>,
    outbound_count: usize,
    orphan_statuses: u64,
    from_statuses: u64,
    sent_missing: u64,
    category_overridden: u64,
}

/// An event reduced to what the join needs, keyed by a 92-bit fingerprint of its id: 20 bytes,
/// because every byte of this array is written to fresh memory twice per event.
#[derive(Clone, Copy, Default)]
#[repr(C, packed(4))]
struct IdKey {
    fp: u64,
    /// A status's instant; the step position of an inbound or outbound event.
    val: i64,
    /// 27 more fingerprint bits, then the kind (2 bits), then the status (3 bits).
    tag: u32,
}

impl IdKey {
    fn new(fp: (u64, u64), val: i64, kind: StepKind, status: Option<DeliveryStatus>) -> Self {
        let st = match status {
            None => 0,
            Some(DeliveryStatus::Sent) => 1,
            Some(DeliveryStatus::Delivered) => 2,
            Some(DeliveryStatus::Read) => 3,
            Some(DeliveryStatus::Failed) => 4,
        };
        let kind_bits = match kind {
            StepKind::Inbound => 0,
            StepKind::Outbound => 1,
            StepKind::Status => 2,
            StepKind::FromStatus => 3,
            StepKind::Dropped => unreachable!("keys are never dropped"),
        };
        IdKey {
            fp: fp.0,
            val,
            tag: ((fp.1 >> 37) as u32) << 5 | kind_bits << 3 | st,
        }
    }
    /// A status's instant (of a `Status` key).
    fn at(&self) -> UnixMs {
        self.val
    }
    /// An inbound or outbound event's step position.
    fn pos(&self) -> usize {
        self.val as usize
    }
    /// The key of an event of a part whose steps come after `first_step` others.
    fn after(self, first_step: i64) -> IdKey {
        let mut k = self;
        if k.kind() != StepKind::Status {
            k.val += first_step;
        }
        k
    }
    fn same_id(&self, o: &IdKey) -> bool {
        self.fp == o.fp && self.tag >> 5 == o.tag >> 5
    }
    fn kind(&self) -> StepKind {
        match (self.tag >> 3) & 3 {
            0 => StepKind::Inbound,
            1 => StepKind::Outbound,
            2 => StepKind::Status,
            _ => StepKind::FromStatus,
        }
    }
    fn status(&self) -> Option<DeliveryStatus> {
        match self.tag & 7 {
            1 => Some(DeliveryStatus::Sent),
            2 => Some(DeliveryStatus::Delivered),
            3 => Some(DeliveryStatus::Read),
            4 => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A 128-bit fingerprint of an id: two independent 64-bit mixes of its bytes, of which the join
/// keeps 91 bits. Events are grouped by fingerprint, so the join never reads the ids themselves
/// (which lie scattered in memory) in fingerprint order. Two different ids share 91 bits with
/// probability about n²/2⁹² (2·10⁻¹⁴ for ten million ids): below the rate of undetected memory
/// errors.
fn fingerprint(id: &str) -> (u64, u64) {
    let b = id.as_bytes();
    let mut h1: u64 = 0x243F_6A88_85A3_08D3 ^ b.len() as u64;
    let mut h2: u64 = 0x1319_8A2E_0370_7344 ^ (b.len() as u64).rotate_left(32);
    let mut chunks = b.chunks_exact(8);
    let mut mix = |w: u64| {
        h1 = (h1 ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
        h2 = (h2 ^ w.rotate_left(17))
            .wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
            .rotate_left(31);
    };
    for c in &mut chunks {
        mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        mix(u64::from_le_bytes(last) ^ 0x80);
    }
    (splitmix(h1), splitmix(h2 ^ 0x5851_F42D_4C95_7F2D))
}

fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bits of the fingerprint that group keys into buckets before the join: 4096 buckets for large
/// inputs, each of which fits in the cache.
const BUCKET_BITS: u32 = 12;

/// Bucket bits for `events` events joined at once: a small input (a send check rates a few
/// dozen events) gets about 16 keys a bucket rather than thousands of empty buckets.
fn bucket_bits(events: usize) -> u32 {
    (usize::BITS - (events / 16).leading_zeros()).clamp(1, BUCKET_BITS)
}

/// What the join needs from a run of events, computed apart from the rating: on the thread
/// that parsed them, for instance, while other threads parse the rest (see
/// [`rate_keyed_chunks`]). It holds a key per inbound, outbound and status event (its id's
/// fingerprint; the position of its step or its instant) grouped by the fingerprint's top
/// bits, a step per inbound and outbound event in input order, and where the accounts are.
#[derive(Clone)]
pub struct ChunkKeys {
    /// The keys, bucket after bucket; each bucket in input order.
    keys: Vec<IdKey>,
    /// Index one past each bucket's last key.
    bucket_ends: Vec<u32>,
    steps: Vec<Step>,
    /// The WABAs of the outbound events, in order of first appearance (a step's `account`).
    wabas: Vec<String>,
    /// Positions of the account events.
    accounts: Vec<u32>,
    /// Number of events the keys were computed from.
    events: usize,
    /// Some inbound or outbound event has a BSUID or an identity change: users must be linked.
    identities: bool,
}

impl ChunkKeys {
    /// The join keys of one chunk of events, for [`rate_keyed_chunks`].
    pub fn new(events: &[Event<'_>]) -> ChunkKeys {
        assert!(
            events.len() < u32::MAX as usize,
            "more events than one batch holds"
        );
        let ends = [events.len() as u32];
        let chunks = [events];
        ChunkKeys::build(
            Events {
                chunks: &chunks,
                ends: &ends,
            },
            BUCKET_BITS,
        )
    }

    /// One pass over the events lays out the steps and computes the keys (each id is read
    /// once, here: ids lie scattered through the input, so a second reading would miss the
    /// cache again for every event); a scatter then groups the keys by bucket.
    fn build(events: Events<'_, '_>, bits: u32) -> ChunkKeys {
        let bucket = |k: &IdKey| (k.fp >> (64 - bits)) as usize;
        let mut starts = vec![0u32; (1 << bits) + 1];
        let mut steps = Vec::with_capacity(events.len() / 2);
        let mut accounts = Vec::new();
        let mut wabas: FxHashMap<&str, u32> = FxHashMap::default();
        let mut keys = Vec::with_capacity(events.len());
        let mut identities = false;
        for (i, e) in events.iter().enumerate() {
            let k = match e {
                Event::Account(_) => {
                    accounts.push(i as u32);
                    continue;
                }
                Event::Inbound(x) => {
                    identities |= x.user_id.is_some() || x.change.is_some();
                    let pos = steps.len() as i64;
                    steps.push(Step::new(x.at, i, &x.id, NO_ACCOUNT, StepKind::Inbound));
                    IdKey::new(fingerprint(&x.id), pos, StepKind::Inbound, None)
                }
                Event::Outbound(x) => {
                    identities |= x.user_id.is_some();
                    let pos = steps.len() as i64;
                    let n = wabas.len() as u32;
                    let waba = *wabas.entry(x.waba.as_ref()).or_insert(n);
                    steps.push(Step::new(x.at, i, &x.id, waba, StepKind::Outbound));
                    IdKey::new(fingerprint(&x.id), pos, StepKind::Outbound, None)
                }
                Event::Status(x) => {
                    let fp = fingerprint(&x.id);
                    if let Some(m) = &x.message {
                        // It may stand for its message: a step of its own, and a key to it.
                        identities |= m.user_id.is_some();
                        let pos = steps.len() as i64;
                        let n = wabas.len() as u32;
                        let waba = *wabas.entry(m.waba.as_ref()).or_insert(n);
                        steps.push(Step::new(x.at, i, &x.id, waba, StepKind::FromStatus));
                        let k = IdKey::new(fp, pos, StepKind::FromStatus, Some(x.status));
                        starts[bucket(&k) + 1] += 1;
                        keys.push(k);
                    }
                    IdKey::new(fp, x.at, StepKind::Status, Some(x.status))
                }
            };
            starts[bucket(&k) + 1] += 1;
            keys.push(k);
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut grouped = vec![IdKey::default(); keys.len()];
        let mut next = starts;
        for k in keys {
            let b = bucket(&k);
            grouped[next[b] as usize] = k;
            next[b] += 1;
        }
        next.pop();
        let mut names = vec![String::new(); wabas.len()];
        for (waba, i) in wabas {
            names[i as usize] = waba.to_string();
        }
        ChunkKeys {
            keys: grouped,
            bucket_ends: next,
            steps,
            wabas: names,
            accounts,
            events: events.len(),
            identities,
        }
    }

    fn bits(&self) -> u32 {
        self.bucket_ends.len().trailing_zeros()
    }

    fn bucket(&self, b: usize) -> &[IdKey] {
        let start = if b == 0 { 0 } else { self.bucket_ends[b - 1] };
        &self.keys[start as usize..self.bucket_ends[b] as usize]
    }
}

/// Sorts the keys of one bucket (which fits in the cache) by (fingerprint, kind, status,
/// position): a scatter on the next bits of the fingerprint into `sorted` leaves runs of a few
/// keys for insertion sorts.
fn sort_bucket(bucket: &[IdKey], bits: u32, sorted: &mut Vec<IdKey>) {
    const SUB_BITS: u32 = 8;
    let full_key = |k: &IdKey| (k.fp, k.tag, k.val);
    sorted.clear();
    sorted.extend_from_slice(bucket);
    if bucket.len() <= 64 {
        sorted.sort_unstable_by_key(full_key);
        return;
    }
    let sub_bucket =
        |k: &IdKey| ((k.fp >> (64 - bits - SUB_BITS)) & ((1 << SUB_BITS) - 1)) as usize;
    let mut sub = [0usize; (1 << SUB_BITS) + 1];
    for k in bucket {
        sub[sub_bucket(k) + 1] += 1;
    }
    for i in 1..sub.len() {
        sub[i] += sub[i - 1];
    }
    let mut at = sub;
    for k in bucket {
        let s = sub_bucket(k);
        sorted[at[s]] = *k;
        at[s] += 1;
    }
    for r in sub.windows(2) {
        if r[1] - r[0] > 1 {
            sorted[r[0]..r[1]].sort_unstable_by_key(full_key);
        }
    }
}

impl Timeline {
    /// Joins the events by id, bucket after bucket of keys (the same bucket of every part, put
    /// together, then sorted): the join marks repeats and conflicts as dropped and writes each
    /// outbound's delivery into its step. Sorting keeps the join sequential in memory, where a
    /// hash table of millions of ids would not.
    fn build<'e>(
        events: Events<'_, 'e>,
        parts: Vec<ChunkKeys>,
        account_ids: &FxHashMap<&str, u32>,
        out: &mut Rated<'e>,
    ) -> Self {
        let bits = parts.first().map_or(1, ChunkKeys::bits);
        assert!(
            parts.iter().all(|p| p.bits() == bits),
            "join keys of one batch have one bucket size"
        );
        // The parts' steps, put after one another: a key's position is in its part's steps.
        let mut steps = Vec::with_capacity(parts.iter().map(|p| p.steps.len()).sum());
        let mut step_starts = Vec::with_capacity(parts.len());
        let mut first_event = 0u32;
        for p in &parts {
            step_starts.push(steps.len() as i64);
            let account_of: Vec<u32> = p
                .wabas
                .iter()
                .map(|w| account_ids.get(w.as_str()).copied().unwrap_or(NO_ACCOUNT))
                .collect();
            steps.extend(p.steps.iter().map(|s| Step {
                idx: s.idx + first_event,
                account: match s.kind {
                    StepKind::Outbound | StepKind::FromStatus => account_of[s.account as usize],
                    _ => NO_ACCOUNT,
                },
                ..*s
            }));
            first_event += p.events as u32;
        }
        let mut t = Timeline {
            steps,
            outbound_count: 0,
            orphan_statuses: 0,
            from_statuses: 0,
            sent_missing: 0,
            category_overridden: 0,
        };
        let mut dropped = false;
        let mut conflicts: Vec<(&'e str, &'static str)> = Vec::new();
        let mut unknown_category: Vec<&'e str> = Vec::new();
        let mut gathered: Vec<IdKey> = Vec::new();
        let mut sorted: Vec<IdKey> = Vec::new();
        for b in 0..1usize << bits {
            gathered.clear();
            for (p, &first_step) in parts.iter().zip(&step_starts) {
                let keys = p.bucket(b);
                if first_step == 0 {
                    gathered.extend_from_slice(keys);
                } else {
                    gathered.extend(keys.iter().map(|k| k.after(first_step)));
                }
            }
            sort_bucket(&gathered, bits, &mut sorted);
            for run in sorted.chunk_by(|a, b| a.same_id(b)) {
                dropped |= t.join_one_id(run, events, out, &mut conflicts, &mut unknown_category);
            }
        }
        drop(parts);
        conflicts.sort_unstable();
        for (id, kind) in conflicts {
            out.errors.push(RatingError::ConflictingDuplicate {
                id: id.to_string(),
                kind,
            });
        }
        unknown_category.sort_unstable();
        for id in unknown_category {
            out.errors
                .push(RatingError::UnknownCategory { id: id.to_string() });
        }
        // Order by (instant, kind); the walk orders each run of equal (instant, kind) by id
        // just before it takes its steps, so that ids (strings elsewhere in memory) are read
        // only where they decide, and when the walk reads those events anyway.
        order_steps(&mut t.steps, dropped);
        t
    }

    /// Takes the events of one id (sorted by kind, then position): keeps one inbound and one
    /// outbound (identical repeats are counted, different ones are conflicts), marks the other
    /// steps dropped, and folds the statuses into the outbound's step. True when a step was
    /// dropped.
    fn join_one_id<'e>(
        &mut self,
        run: &[IdKey],
        events: Events<'_, 'e>,
        out: &mut Rated<'e>,
        conflicts: &mut Vec<(&'e str, &'static str)>,
        unknown_category: &mut Vec<&'e str>,
    ) -> bool {
        let mut delivered_at = NEVER;
        let mut failed = false;
        let mut has_status = false;
        let mut outbound: Option<usize> = None;
        let mut dropped = false;
        for same_kind in run.chunk_by(|a, b| a.kind() == b.kind()) {
            let first = same_kind[0];
            match first.kind() {
                StepKind::Inbound | StepKind::Outbound => {
                    // Repeats are rare: only then are the events themselves read and compared
                    // (here, in fingerprint order, every read would miss the cache).
                    let steps = &mut self.steps;
                    let event = |k: &IdKey| events.get(steps[k.pos()].idx);
                    let keep = same_kind.len() == 1 || {
                        let e = event(&first);
                        same_kind[1..].iter().all(|x| event(x) == e)
                    };
                    if !keep {
                        let name = if first.kind() == StepKind::Inbound {
                            "inbound"
                        } else {
                            "outbound"
                        };
                        conflicts.push((event_id(event(&first)), name));
                    }
                    if same_kind.len() > 1 {
                        if keep {
                            out.notes.duplicates += (same_kind.len() - 1) as u64;
                        }
                        let skip = usize::from(keep);
                        for x in &same_kind[skip..] {
                            steps[x.pos()].kind = StepKind::Dropped;
                        }
                        dropped = true;
                    }
                    if keep && first.kind() == StepKind::Outbound {
                        outbound = Some(first.pos());
                    }
                }
                StepKind::Status => {
                    has_status = true;
                    for x in same_kind {
                        match x.status() {
                            Some(DeliveryStatus::Delivered | DeliveryStatus::Read) => {
                                if delivered_at == NEVER || x.at() < delivered_at {
                                    delivered_at = x.at();
                                }
                            }
                            Some(DeliveryStatus::Failed) => failed = true,
                            Some(DeliveryStatus::Sent) | None => {}
                        }
                    }
                }
                StepKind::FromStatus => {
                    dropped |= self.join_from_statuses(
                        same_kind,
                        &mut outbound,
                        delivered_at != NEVER,
                        events,
                        unknown_category,
                    );
                }
                StepKind::Dropped => unreachable!("keys are never dropped"),
            }
        }
        match outbound {
            Some(pos) => {
                self.outbound_count += 1;
                if has_status {
                    let step = &mut self.steps[pos];
                    step.delivered_at = delivered_at;
                    step.failed = failed;
                }
            }
            None if has_status => self.orphan_statuses += 1,
            None => {}
        }
        dropped
    }
}

impl Timeline {
    /// The statuses of one id that carry their message (`FromStatus` keys, sorted by status,
    /// then position): with an outbound event, they only say which category Meta bills it in
    /// (D112); without, the `sent` one (else the earliest, D111) stands for the message in
    /// Meta's category (D110). The others' steps are dropped. True when a step was dropped.
    fn join_from_statuses<'e>(
        &mut self,
        keys: &[IdKey],
        outbound: &mut Option<usize>,
        delivered: bool,
        events: Events<'_, 'e>,
        unknown_category: &mut Vec<&'e str>,
    ) -> bool {
        let steps = &mut self.steps;
        let status_of = |k: &IdKey| match events.get(steps[k.pos()].idx) {
            Event::Status(s) => s,
            _ => unreachable!("a FromStatus step is a status"),
        };
        // The one that stands for the message: `sent` first, then the earliest, then the
        // content (repeats with different fields must not depend on the order of lines).
        let order = |k: &IdKey| {
            let s = status_of(k);
            (
                s.status != DeliveryStatus::Sent,
                s.at,
                s.status as u8,
                s.message.as_deref().map(|m| {
                    (
                        m.category.map(encode_kind),
                        m.waba.as_ref(),
                        m.phone,
                        m.user,
                        m.user_id.as_ref().map(|b| b.as_str()),
                    )
                }),
            )
        };
        let best = *keys
            .iter()
            .min_by(|a, b| order(a).cmp(&order(b)))
            .expect("a run");
        // Meta's category: the chosen status's, else the earliest that gives one.
        let category = status_of(&best)
            .message
            .as_deref()
            .and_then(|m| m.category)
            .or_else(|| {
                let mut with: Vec<&IdKey> = keys
                    .iter()
                    .filter(|k| {
                        status_of(k)
                            .message
                            .as_deref()
                            .is_some_and(|m| m.category.is_some())
                    })
                    .collect();
                with.sort_by(|a, b| order(a).cmp(&order(b)));
                with.first()
                    .and_then(|k| status_of(k).message.as_deref()?.category)
            });
        let best_id = status_of(&best).id.as_ref();
        let best_sent = status_of(&best).status == DeliveryStatus::Sent;
        match *outbound {
            Some(pos) => {
                if let (Some(meta), Event::Outbound(ob)) = (category, events.get(steps[pos].idx)) {
                    let declared = match ob.kind {
                        MessageKind::Template(c) => Some(c),
                        MessageKind::NonTemplate => None,
                    };
                    let billed = matches!(
                        meta,
                        Category::Marketing | Category::Utility | Category::Authentication
                    );
                    if billed && declared.is_some_and(|c| c != meta) {
                        steps[pos].meta_kind = encode_kind(meta);
                        self.category_overridden += 1;
                    }
                }
                for k in keys {
                    steps[k.pos()].kind = StepKind::Dropped;
                }
            }
            None => {
                for k in keys {
                    steps[k.pos()].kind = StepKind::Dropped;
                }
                match category {
                    Some(c) => {
                        let step = &mut steps[best.pos()];
                        step.kind = StepKind::FromStatus;
                        step.meta_kind = encode_kind(c);
                        *outbound = Some(best.pos());
                        self.from_statuses += 1;
                        self.sent_missing += u64::from(!best_sent);
                    }
                    // Nothing says what it was; undelivered, it would cost nothing anyway.
                    None if delivered => unknown_category.push(best_id),
                    None => {}
                }
            }
        }
        true
    }
}

/// Sorts steps by (instant, kind), leaving out dropped ones. The steps come in input order,
/// which is mostly time order with some late lines: one pass keeps the steps that extend the
/// ordered sequence in place and sets the others aside (a step that is ahead of its successor
/// goes aside too, so that one early line cannot send all that follow aside); the few set
/// aside are sorted and merged in from the back. Any input order gives the same result, only
/// slower when it is far from time order.
fn order_steps(steps: &mut Vec<Step>, dropped: bool) {
    let key = |s: &Step| (s.at, s.kind.rank());
    let n = steps.len();
    let mut aside = Vec::new();
    let mut w = 0;
    for r in 0..n {
        let s = steps[r];
        if dropped && s.kind == StepKind::Dropped {
            continue;
        }
        let k = key(&s);
        let fits = w == 0 || key(&steps[w - 1]) <= k;
        let ahead = r + 1 < n && {
            let next = key(&steps[r + 1]);
            next < k && (w == 0 || key(&steps[w - 1]) <= next)
        };
        if fits && !ahead {
            steps[w] = s;
            w += 1;
        } else {
            aside.push(s);
        }
    }
    steps.truncate(w);
    if aside.is_empty() {
        return;
    }
    aside.sort_unstable_by_key(key);
    steps.extend_from_slice(&aside);
    let (mut i, mut j) = (w, aside.len());
    let mut k = steps.len();
    while j > 0 {
        k -= 1;
        if i > 0 && key(&steps[i - 1]) > key(&aside[j - 1]) {
            steps[k] = steps[i - 1];
            i -= 1;
        } else {
            steps[k] = aside[j - 1];
            j -= 1;
        }
    }
}

fn event_id<'a>(e: &'a Event<'_>) -> &'a str {
    match e {
        Event::Account(a) => a.waba.as_ref(),
        Event::Inbound(x) => x.id.as_ref(),
        Event::Outbound(x) => x.id.as_ref(),
        Event::Status(x) => x.id.as_ref(),
    }
}

// ---------------------------------------------------------------------------------------------
// The state machine.

const NEVER: UnixMs = UnixMs::MIN;
const NO_COUNTRY: u16 = u16::MAX;

/// (business phone, user): the user is a person of [`Identities`], their phone number unless
/// BSUIDs are about.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(C, packed(4))]
struct PairKey {
    phone: u32,
    user: u64,
}

/// What the rater remembers per (business phone, user): 32 bytes, 4-aligned, so that a map
/// entry with its key is 44 bytes. CBP conversations live in a side map, only while open.
#[derive(Clone, Copy)]
#[repr(C, packed(4))]
struct PairState {
    /// Latest inbound message (opens the customer service window).
    last_inbound: UnixMs,
    /// Latest inbound from a free entry point.
    last_entry_point: UnixMs,
    /// End (exclusive) of the open free entry point window, or NEVER.
    fep_end: UnixMs,
    /// The outbound message that opened the free entry point window (timeline index).
    fep_opener: u32,
    country: u16,
    /// Bit 0: a delivered message was sent since `last_entry_point`.
    /// Bit 1: the free entry point window was opened under CBP.
    flags: u8,
}

const ANSWERED: u8 = 1;
const FEP_CBP: u8 = 2;

/// An open CBP conversation.
#[derive(Clone, Copy, Debug)]
struct Conversation {
    /// The category that joins it: a template's category, or service.
    key: Category,
    /// Output category (authentication_international for an international auth conversation).
    category: Category,
    pricing_type: PricingType,
    opened_at: UnixMs,
    expires_at: UnixMs,
    opener: u32,
}

struct AccountState<'e> {
    waba: &'e str,
    currency: Currency,
    portfolio: u32,
    calendar: LocalCalendar,
    /// Instants the eras Cbp, CbpFreeService, Pmp, PmpChargedService start in this timezone.
    era_starts: [UnixMs; 4],
    primary_country: Option<CountryId>,
    auth_intl: Option<(UnixMs, Vec<(CountryId, UnixMs)>)>,
}

impl AccountState<'_> {
    fn era(&self, at: UnixMs) -> Era {
        match self.era_starts.iter().take_while(|&&s| s <= at).count() {
            0 => Era::Before,
            1 => Era::Cbp,
            2 => Era::CbpFreeService,
            3 => Era::Pmp,
            _ => Era::PmpChargedService,
        }
    }
}

struct Machine<'t, 'e> {
    tariff: &'t Tariff,
    opts: RateOptions,
    accounts: Vec<AccountState<'e>>,
    portfolios: FxHashMap<&'e str, u32>,
    phones: FxHashMap<u64, u32>,
    pairs: FxHashMap<PairKey, PairState>,
    conversations: FxHashMap<PairKey, Vec<Conversation>>,
    /// (account, month) → service conversations opened (CBP free tier).
    cbp_free_service: FxHashMap<(u32, Month), u32>,
    /// (business phone, month) → free service messages used (from 2026-10-01).
    free_service: FxHashMap<(u32, Month), u32>,
    /// (portfolio, market, category, month) → charged messages (volume tiers).
    tier_counts: FxHashMap<(u32, MarketId, Category, Month), u64>,
    account_ids: FxHashMap<&'e str, u32>,
    /// Who each user is, when some events carry BSUIDs.
    ids: Identities<'e>,
    non_template_outside_window: u64,
}

impl<'t, 'e> Machine<'t, 'e> {
    fn new(tariff: &'t Tariff, opts: RateOptions) -> Self {
        Machine {
            tariff,
            opts,
            accounts: Vec::new(),
            portfolios: FxHashMap::default(),
            phones: FxHashMap::default(),
            pairs: FxHashMap::default(),
            conversations: FxHashMap::default(),
            cbp_free_service: FxHashMap::default(),
            free_service: FxHashMap::default(),
            tier_counts: FxHashMap::default(),
            account_ids: FxHashMap::default(),
            ids: Identities::default(),
            non_template_outside_window: 0,
        }
    }

    fn stats(&self) -> StateStats {
        fn table<K, V>(m: &FxHashMap<K, V>) -> u64 {
            // hashbrown: one entry and one control byte per bucket.
            (m.capacity() as u64) * (std::mem::size_of::<(K, V)>() as u64 + 1)
        }
        let conversations: u64 = self
            .conversations
            .values()
            .map(|v| (v.capacity() * std::mem::size_of::<Conversation>()) as u64)
            .sum();
        StateStats {
            pairs: self.pairs.len() as u64,
            pair_bytes: table(&self.pairs),
            other_bytes: table(&self.conversations)
                + conversations
                + table(&self.cbp_free_service)
                + table(&self.free_service)
                + table(&self.tier_counts)
                + table(&self.phones)
                + table(&self.account_ids)
                + self.ids.bytes(),
        }
    }

    fn add_account(&mut self, a: &'e Account<'e>) -> Result<(), RatingError> {
        let markets = &self.tariff.markets;
        let invalid = |why: String| RatingError::InvalidAccount {
            waba: a.waba.to_string(),
            why,
        };
        let country = |iso: &str| {
            markets
                .country(iso)
                .ok_or_else(|| invalid(format!("'{iso}' is not a country of markets.csv")))
        };
        let primary_country = a.primary_country.as_deref().map(country).transpose()?;
        let auth_intl = match &a.auth_international {
            None => None,
            Some(ai) => Some((
                ai.start,
                ai.exception_countries
                    .iter()
                    .map(|(c, at)| Ok((country(c)?, *at)))
                    .collect::<Result<Vec<_>, RatingError>>()?,
            )),
        };
        let calendar = LocalCalendar::new(a.timezone);
        let starts = Era::starts();
        let era_starts = std::array::from_fn(|i| calendar.start_of(starts[i].1));
        let n = self.portfolios.len() as u32;
        let portfolio = *self.portfolios.entry(a.portfolio.as_ref()).or_insert(n);
        self.account_ids
            .insert(a.waba.as_ref(), self.accounts.len() as u32);
        self.accounts.push(AccountState {
            waba: a.waba.as_ref(),
            currency: a.currency,
            portfolio,
            calendar,
            era_starts,
            primary_country,
            auth_intl,
        });
        Ok(())
    }

    fn phone_index(&mut self, phone: Msisdn) -> u32 {
        let n = self.phones.len() as u32;
        *self.phones.entry(phone.get()).or_insert(n)
    }

    fn pair(&mut self, phone: Msisdn, person: u64) -> (PairKey, &mut PairState) {
        let key = PairKey {
            phone: self.phone_index(phone),
            user: person,
        };
        (key, pair_entry(&mut self.pairs, self.tariff, key))
    }

    /// Reads the events of the next steps, then looks up their pairs, without changing
    /// anything: each loop's loads are independent of one another, so that their cache misses
    /// overlap instead of stalling the walk one after the other.
    fn look_ahead(
        &self,
        steps: &[Step],
        events: Events<'_, 'e>,
        pairs: &mut Vec<(Msisdn, u64)>,
    ) -> usize {
        pairs.clear();
        pairs.extend(steps.iter().map(|s| match events.get(s.idx) {
            Event::Inbound(x) => (x.phone, self.ids.person(x.user, x.user_id.as_ref())),
            Event::Outbound(x) => (x.phone, self.ids.person(x.user, x.user_id.as_ref())),
            Event::Status(x) => {
                let m = x
                    .message
                    .as_deref()
                    .expect("a status step stands for its message");
                (m.phone, self.ids.person(m.user, m.user_id.as_ref()))
            }
            Event::Account(_) => unreachable!("steps are messages"),
        }));
        pairs
            .iter()
            .filter(|(phone, user)| {
                self.phones.get(&phone.get()).is_some_and(|&p| {
                    self.pairs.contains_key(&PairKey {
                        phone: p,
                        user: *user,
                    })
                })
            })
            .count()
    }

    fn inbound(&mut self, ib: &Inbound<'_>) {
        if ib.change.is_some() {
            // An identity change links identities (`Identities`); the user wrote nothing.
            return;
        }
        let person = self.ids.person(ib.user, ib.user_id.as_ref());
        let (_, p) = self.pair(ib.phone, person);
        p.last_inbound = ib.at;
        if ib.entry_point.is_some() {
            p.last_entry_point = ib.at;
            p.flags &= !ANSWERED;
        }
    }

    fn outbound(
        &mut self,
        idx: u32,
        acc_id: u32,
        ob: Sent<'e>,
        delivery: Delivery,
        events: Events<'_, 'e>,
    ) -> Result<Charge<'e>, RatingError> {
        let s = ob.at;
        let id = ob.id;
        if acc_id == NO_ACCOUNT {
            return Err(RatingError::UnknownAccount {
                id: id.to_string(),
                waba: ob.waba.to_string(),
            });
        }
        let acc = &mut self.accounts[acc_id as usize];
        let (date, month) = acc.calendar.date_month(s);
        let era = acc.era(s);
        if era == Era::Before {
            return Err(RatingError::UnsupportedDate {
                id: id.to_string(),
                date,
            });
        }
        let (currency, portfolio, waba) = (acc.currency, acc.portfolio, acc.waba);
        let tariff = self.tariff;
        let phone_idx = self.phone_index(ob.phone);
        let user_id = ob.user_id;
        let key = PairKey {
            phone: phone_idx,
            user: self.ids.person(ob.user, user_id),
        };
        let pair = pair_entry(&mut self.pairs, tariff, key);
        // The market is the country of the user's number when one is known, else of the
        // BSUID's prefix (decisions.md D102); the pair keeps its person's number's country.
        let country = match ob.user {
            Some(u) if u.get() == key.user && pair.country != NO_COUNTRY => CountryId(pair.country),
            _ => country_of_user(&self.ids, tariff, &ob, key.user, pair.country)?,
        };
        let markets = &tariff.markets;
        let market = markets
            .market_on(country, date)
            .ok_or_else(|| RatingError::NoMarket {
                id: id.to_string(),
                country: markets.iso2(country).to_string(),
                date,
            })?;
        let acc = &self.accounts[acc_id as usize];
        let model = era.model();

        // The message's own category, before any window or conversation makes it free.
        let category = match ob.kind {
            MessageKind::NonTemplate => Category::Service,
            MessageKind::Template(Category::Marketing) if ob.marketing_messages_api => {
                Category::MarketingLite
            }
            MessageKind::Template(Category::Authentication) => {
                let intl = acc.auth_intl.as_ref().is_some_and(|(start, exceptions)| {
                    let start = exceptions
                        .iter()
                        .find(|(c, _)| *c == country)
                        .map_or(*start, |e| e.1);
                    acc.primary_country != Some(country)
                        && s >= start
                        && tariff
                            .rates
                            .lookup(
                                &RateKey {
                                    currency,
                                    model,
                                    market,
                                    category: Category::AuthenticationInternational,
                                },
                                date,
                            )
                            .is_some()
                });
                if intl {
                    Category::AuthenticationInternational
                } else {
                    Category::Authentication
                }
            }
            MessageKind::Template(c) => c,
        };

        let mut charge = Charge {
            id,
            sent_at: s,
            waba,
            phone: ob.phone,
            user: ob.user,
            user_id: user_id.map(|b| b.as_str()),
            country,
            market,
            pricing_model: model,
            category,
            pricing_type: PricingType::Regular,
            tier: None,
            rate: None,
            amount: Decimal::ZERO,
            currency,
            billed_at: None,
            conversation_id: None,
            agent: ob.agent,
        };

        let delivered_at = match delivery.delivered_at {
            Some(d) => Some(d),
            None if self.opts.assume_delivered && !delivery.failed => Some(s),
            None => None,
        };
        let Some(delivered_at) = delivered_at else {
            charge.pricing_type = PricingType::Undelivered;
            return Ok(charge);
        };
        charge.billed_at = Some(delivered_at);

        let csw_open = pair.last_inbound != NEVER
            && pair.last_inbound <= s
            && s - pair.last_inbound < WINDOW_MS;
        if ob.kind == MessageKind::NonTemplate && !csw_open {
            self.non_template_outside_window += 1;
        }

        // Free entry point: inside an open window, or opening one.
        let fep_open = pair.fep_end != NEVER && s < pair.fep_end;
        let fep_opens = !fep_open
            && pair.last_entry_point != NEVER
            && s < pair.last_entry_point + WINDOW_MS
            && pair.flags & ANSWERED == 0;
        pair.flags |= ANSWERED;
        if fep_opens {
            pair.fep_end = s + FEP_WINDOW_MS;
            pair.fep_opener = idx;
            if model == PricingModel::Cbp {
                pair.flags |= FEP_CBP;
            } else {
                pair.flags &= !FEP_CBP;
            }
            // A free entry point conversation closes all others.
            self.conversations.remove(&key);
        }
        if fep_open || fep_opens {
            let opener = pair.fep_opener;
            charge.pricing_model = if pair.flags & FEP_CBP != 0 {
                PricingModel::Cbp
            } else {
                PricingModel::Pmp
            };
            charge.category = Category::ReferralConversion;
            charge.pricing_type = PricingType::FreeEntryPoint;
            charge.conversation_id = Some(event_id(events.get(opener)));
            return Ok(charge);
        }

        let ctx = Ctx {
            currency,
            model,
            market,
            date,
            id,
        };
        match era {
            Era::Before => unreachable!(),
            Era::Cbp | Era::CbpFreeService => {
                let convs = self.conversations.entry(key).or_default();
                convs.retain(|c| s < c.expires_at);
                let joins = match ob.kind {
                    MessageKind::Template(c) => {
                        let k = if category == Category::MarketingLite {
                            category
                        } else {
                            c
                        };
                        convs.iter().find(|c| c.key == k).copied()
                    }
                    MessageKind::NonTemplate => convs
                        .iter()
                        .min_by(|a, b| {
                            (a.opened_at, event_id(events.get(a.opener)))
                                .cmp(&(b.opened_at, event_id(events.get(b.opener))))
                        })
                        .copied(),
                };
                if let Some(conv) = joins {
                    charge.category = conv.category;
                    charge.pricing_type = conv.pricing_type;
                    charge.conversation_id = Some(event_id(events.get(conv.opener)));
                    return Ok(charge);
                }
                let conv_key = match ob.kind {
                    MessageKind::Template(c) if category != Category::MarketingLite => c,
                    _ => category,
                };
                let (pricing_type, price) = if category == Category::Service {
                    if era == Era::CbpFreeService {
                        (PricingType::FreeCustomerService, None)
                    } else {
                        let used = self.cbp_free_service.entry((acc_id, month)).or_insert(0);
                        *used += 1;
                        if *used <= CBP_FREE_SERVICE_CONVERSATIONS {
                            (PricingType::FreeTier, None)
                        } else {
                            (
                                PricingType::Regular,
                                Some(flat_rate(tariff, &ctx, category)?),
                            )
                        }
                    }
                } else {
                    (
                        PricingType::Regular,
                        Some(flat_rate(tariff, &ctx, category)?),
                    )
                };
                let convs = self.conversations.entry(key).or_default();
                convs.push(Conversation {
                    key: conv_key,
                    category,
                    pricing_type,
                    opened_at: s,
                    expires_at: s + WINDOW_MS,
                    opener: idx,
                });
                charge.pricing_type = pricing_type;
                charge.conversation_id = Some(id);
                if let Some(rate) = price {
                    charge.rate = Some(rate);
                    charge.amount = rate;
                }
                Ok(charge)
            }
            Era::Pmp | Era::PmpChargedService => {
                // A template rides a CBP conversation of its category still open across the switch.
                if let MessageKind::Template(c) = ob.kind {
                    if let Some(convs) = self.conversations.get_mut(&key) {
                        convs.retain(|c| s < c.expires_at);
                        let k = if category == Category::MarketingLite {
                            category
                        } else {
                            c
                        };
                        if let Some(conv) = convs.iter().find(|c| c.key == k) {
                            charge.pricing_model = PricingModel::Cbp;
                            charge.category = conv.category;
                            charge.pricing_type = conv.pricing_type;
                            charge.conversation_id = Some(event_id(events.get(conv.opener)));
                            return Ok(charge);
                        }
                        if convs.is_empty() {
                            self.conversations.remove(&key);
                        }
                    }
                }
                match category {
                    Category::Service => {
                        if era == Era::Pmp {
                            charge.pricing_type = PricingType::FreeCustomerService;
                            return Ok(charge);
                        }
                        let used = self.free_service.entry((phone_idx, month)).or_insert(0);
                        if *used < FREE_SERVICE_MESSAGES {
                            *used += 1;
                            charge.pricing_type = PricingType::FreeTier;
                            return Ok(charge);
                        }
                        let rate = flat_rate(tariff, &ctx, Category::Service)?;
                        charge.rate = Some(rate);
                        charge.amount = rate;
                        Ok(charge)
                    }
                    Category::Utility if csw_open && era == Era::Pmp => {
                        charge.pricing_type = PricingType::FreeCustomerService;
                        Ok(charge)
                    }
                    Category::Utility
                    | Category::Authentication
                    | Category::AuthenticationInternational => {
                        let counter = if category == Category::Utility {
                            Category::Utility
                        } else {
                            Category::Authentication
                        };
                        let n = self
                            .tier_counts
                            .entry((portfolio, market, counter, month))
                            .or_insert(0);
                        *n += 1;
                        let (tier, rate) = tiered_rate(tariff, &ctx, category, *n)?;
                        charge.tier = tier;
                        charge.rate = Some(rate);
                        charge.amount = rate;
                        Ok(charge)
                    }
                    Category::Marketing | Category::MarketingLite => {
                        let rate = flat_rate(tariff, &ctx, category)?;
                        charge.rate = Some(rate);
                        charge.amount = rate;
                        Ok(charge)
                    }
                    Category::ReferralConversion => unreachable!("not a message category"),
                }
            }
        }
    }
}

/// The country of a message's user other than by the pair's cached number (D102): a BSUID's
/// number or prefix, or a number that is not the person's key (after a number change).
#[inline(never)]
fn country_of_user(
    ids: &Identities<'_>,
    tariff: &Tariff,
    ob: &Sent<'_>,
    person: u64,
    cached: u16,
) -> Result<CountryId, RatingError> {
    let market_phone = ids.market_phone(ob.user, ob.user_id);
    let country = match market_phone {
        Some(u) if u.get() == person && cached != NO_COUNTRY => Some(cached),
        Some(u) => tariff.markets.country_of(u.get()).map(|c| c.0),
        None => ob
            .user_id
            .and_then(|b| tariff.markets.country(b.country()).map(|c| c.0)),
    };
    country
        .map(CountryId)
        .ok_or_else(|| match (market_phone, ob.user_id) {
            (None, Some(b)) => RatingError::UnknownUserIdCountry {
                id: ob.id.to_string(),
                country: b.country().to_string(),
            },
            (u, _) => RatingError::UnknownCountry {
                id: ob.id.to_string(),
                user: u.expect("an outbound event names its user"),
            },
        })
}

fn pair_entry<'m>(
    pairs: &'m mut FxHashMap<PairKey, PairState>,
    tariff: &Tariff,
    key: PairKey,
) -> &'m mut PairState {
    pairs.entry(key).or_insert_with(|| PairState {
        last_inbound: NEVER,
        last_entry_point: NEVER,
        fep_end: NEVER,
        fep_opener: 0,
        country: if key.user & BSUID_PERSON != 0 {
            NO_COUNTRY
        } else {
            tariff
                .markets
                .country_of(key.user)
                .map_or(NO_COUNTRY, |c| c.0)
        },
        flags: 0,
    })
}

struct Ctx<'a> {
    currency: Currency,
    model: PricingModel,
    market: MarketId,
    date: Date,
    id: &'a str,
}

fn missing(tariff: &Tariff, ctx: &Ctx<'_>, category: Category, detail: String) -> RatingError {
    RatingError::MissingRate {
        id: ctx.id.to_string(),
        currency: ctx.currency,
        model: ctx.model.as_str(),
        market: tariff.markets.market_name(ctx.market).to_string(),
        category: category.as_str(),
        date: ctx.date,
        detail,
    }
}

/// The list rate of a category (the first tier when the card has tiers: marketing, service and
/// CBP conversations are never tiered).
fn flat_rate(tariff: &Tariff, ctx: &Ctx<'_>, category: Category) -> Result<Decimal, RatingError> {
    let key = RateKey {
        currency: ctx.currency,
        model: ctx.model,
        market: ctx.market,
        category: category.rate_column(),
    };
    let v = tariff
        .rates
        .lookup(&key, ctx.date)
        .ok_or_else(|| missing(tariff, ctx, category.rate_column(), String::new()))?;
    v.steps.first().map(|s| s.1).ok_or_else(|| {
        missing(
            tariff,
            ctx,
            category.rate_column(),
            v.gap_detail().unwrap_or_default(),
        )
    })
}

fn tiered_rate(
    tariff: &Tariff,
    ctx: &Ctx<'_>,
    category: Category,
    n: u64,
) -> Result<(Option<TierRange>, Decimal), RatingError> {
    let key = RateKey {
        currency: ctx.currency,
        model: ctx.model,
        market: ctx.market,
        category,
    };
    let v = tariff
        .rates
        .lookup(&key, ctx.date)
        .ok_or_else(|| missing(tariff, ctx, category, String::new()))?;
    if let Some(detail) = v.gap_detail() {
        return Err(missing(tariff, ctx, category, detail));
    }
    v.price(n).ok_or_else(|| {
        missing(
            tariff,
            ctx,
            category,
            format!(" (no tier holds message #{n} of the month)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_state_stays_compact() {
        assert_eq!(std::mem::size_of::<PairKey>(), 12);
        assert_eq!(std::mem::size_of::<PairState>(), 32);
        assert_eq!(std::mem::size_of::<(PairKey, PairState)>(), 44);
        assert_eq!(std::mem::size_of::<IdKey>(), 20);
        assert_eq!(std::mem::size_of::<Step>(), 40);
    }
}
