//! `wabill-gen`: seeded synthetic event streams in wabill's input format (JSON Lines, see
//! `events.md`), for benchmarks and for determinism and property tests.
//!
//! This module owns the public API and the stream's assembly: the accounts, who talks to
//! whom, how many lines each hour gets, and putting lines into (mostly) time order with the
//! reorderings and repeats a real webhook feed has. The conversations themselves are in
//! the `session` module, the user numbers in `countries`.
//!
//! The output is a pure function of the [`GenConfig`]: the same seed and settings give the
//! same bytes on any machine (own PRNG, integer arithmetic only, no hash-map iteration).
//!
//! # Shape of the stream
//! First one `account` line per WABA, then `events` lines of three kinds, spread over `days`
//! with a daily rhythm (busy afternoons, quiet nights and weekends). Each session is a user
//! and one business phone: support chats started by the user, marketing campaigns, utility
//! notifications, one-time passwords, and ad clicks (`entry_point`). Every outbound message
//! gets statuses (`sent`, `delivered`, often `read`; a few `failed`, a few none at all).
//! Lines are in order of `at` except that, with `shuffle_statuses`, about 3% of outbound lines
//! come a few seconds late, after their first statuses (the business's send log reaching the
//! stream after the platform's webhooks), and under 1% of statuses arrive up to half an hour
//! late; and that `duplicate_permille` of lines are repeated verbatim up to ten minutes later.
//!
//! With the default settings the lines are about 10% inbound (5% of them with an entry
//! point), 25% outbound (60% of them free-form replies, 40% templates) and 64% statuses,
//! plus 0.5% repeats.

mod countries;
mod line;
mod rng;
mod session;
mod time;

use countries::{UserBook, AUTH_INTERNATIONAL_COUNTRIES, COUNTRIES, WABA_PROFILES};
use line::{Ev, LineWriter};
use rng::{mix64, Rng};
use session::{Party, Sim};
use std::io::{self, Write};
use time::{parse_date, push_date, Clock};

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenConfig {
    pub seed: u64,
    /// Number of lines after the accounts; the stream has exactly this many.
    pub events: u64,
    /// WhatsApp Business Accounts, `W1` to `W{wabas}`, five to a portfolio.
    pub wabas: u32,
    /// Distinct user indices; each is one stable phone number, so this bounds the distinct
    /// numbers.
    pub users: u64,
    /// Business phone numbers per WABA.
    pub phones_per_waba: u32,
    /// First day (UTC), `YYYY-MM-DD`.
    pub start: String,
    /// Days over which messages are sent; statuses of the last ones may come a little later.
    pub days: u32,
    /// Per mille of lines followed, a little later, by a verbatim copy.
    pub duplicate_permille: u32,
    /// Let statuses come before their outbound line, or late, as webhooks do.
    pub shuffle_statuses: bool,
}

impl Default for GenConfig {
    fn default() -> GenConfig {
        GenConfig {
            seed: 0,
            events: 1_000_000,
            wabas: 50,
            users: 1_000_000,
            phones_per_waba: 2,
            start: "2026-10-02".to_string(),
            days: 30,
            duplicate_permille: 5,
            shuffle_statuses: true,
        }
    }
}

/// What was written. `lines` counts every line after the accounts:
/// `lines == inbound + outbound + statuses + duplicates`, and the first three count originals
/// only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    pub lines: u64,
    pub accounts: u32,
    pub inbound: u64,
    pub outbound: u64,
    pub statuses: u64,
    pub duplicates: u64,
}

/// Writes the stream `cfg` describes to `out`. Fails on an invalid configuration
/// (`InvalidInput`, before anything is written) or on a write error.
pub fn generate<W: Write>(cfg: &GenConfig, out: &mut W) -> io::Result<GenStats> {
    let day0 = check(cfg)?;
    let mut rng = Rng::new(cfg.seed);
    let businesses = Businesses::new(cfg, &mut rng);
    let mut w = LineWriter::new(out, Clock::new(day0), businesses.phone_fields(cfg));
    let mut stats = GenStats {
        accounts: cfg.wabas,
        ..GenStats::default()
    };
    businesses.write_accounts(&mut w, day0)?;

    let end = cfg.days * DAY;
    let mut sim = Sim::new(rng, end, cfg.shuffle_statuses, cfg.seed);
    let users = UserBook::new();
    let mut buckets = Buckets::default();
    let slices = cfg.days * (DAY / SLICE);
    let total_weight: u64 = (0..slices).map(|s| slice_weight(day0, s)).sum();
    let mut weight_so_far = 0u64;
    let mut scheduled = 0u64;
    for slice in 0..slices {
        // Cumulative targets rather than per-slice quotas: rounding never accumulates, and
        // the last slice brings the total to exactly `events`.
        weight_so_far += slice_weight(day0, slice);
        let target =
            (u128::from(cfg.events) * u128::from(weight_so_far) / u128::from(total_weight)) as u64;
        let slice_start = slice * SLICE;
        while scheduled < target {
            let start = slice_start + sim.rng.below(u64::from(SLICE)) as u32;
            let party = businesses.pick(cfg, &users, &mut sim.rng);
            sim.session(party, start);
            scheduled += buckets.take(&mut sim, slice_start, cfg.events - scheduled, cfg);
        }
        // No later session can put a line here: they all start in later slices.
        buckets.write(slice as usize, &mut w, &mut stats)?;
    }
    for b in slices as usize..buckets.slots.len() {
        buckets.write(b, &mut w, &mut stats)?;
    }
    w.finish()?;
    debug_assert_eq!(stats.lines, cfg.events);
    Ok(stats)
}

const DAY: u32 = 86_400;
/// Lines are generated and sorted an hour at a time.
const SLICE: u32 = 3_600;

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

/// Validates the configuration; returns the first day as days since 1970-01-01.
fn check(cfg: &GenConfig) -> io::Result<i64> {
    let day0 = parse_date(&cfg.start).ok_or_else(|| {
        invalid(format!(
            "start: expected a date YYYY-MM-DD between 1970 and 9999, got {:?}",
            cfg.start
        ))
    })?;
    if cfg.wabas == 0 || cfg.phones_per_waba == 0 || cfg.users == 0 {
        return Err(invalid(
            "wabas, phones_per_waba and users must each be at least 1".to_string(),
        ));
    }
    // Instants are u32 seconds after the first midnight; a century leaves room for the
    // statuses and repeats that trail the last send.
    if !(1..=36_500).contains(&cfg.days) {
        return Err(invalid(format!(
            "days: expected 1 to 36500, got {}",
            cfg.days
        )));
    }
    if cfg.duplicate_permille > 1000 {
        return Err(invalid(format!(
            "duplicate_permille: expected 0 to 1000, got {}",
            cfg.duplicate_permille
        )));
    }
    Ok(day0)
}

/// Relative traffic of an hour (UTC): two daytime peaks, quiet nights, weekends at 80%. Users
/// sit in many timezones, so the curve is a blend, not one country's day.
fn slice_weight(day0: i64, slice: u32) -> u64 {
    const BY_HOUR: [u64; 24] = [
        25, 18, 14, 12, 14, 20, 32, 48, 64, 76, 84, 88, 90, 88, 86, 86, 84, 80, 74, 68, 60, 50, 40,
        32,
    ];
    let day = day0 + i64::from(slice / 24);
    // 1970-01-01 was a Thursday: (day + 4) % 7 is 0 on Sundays.
    let weekday = (day + 4).rem_euclid(7);
    let w = BY_HOUR[(slice % 24) as usize];
    if weekday == 0 || weekday == 6 {
        w * 4
    } else {
        w * 5
    }
}

/// The WABAs: their accounts and how traffic is shared among them.
struct Businesses {
    accounts: Vec<Account>,
    /// Cumulative traffic weights of all WABAs, for a weighted pick.
    all: Weighted,
    /// Per user country: the WABAs based there, weighted the same way. Most users talk to
    /// businesses of their own country, which is also what makes authentication-international
    /// (a user abroad) the exception it is.
    domestic: Vec<Weighted>,
}

struct Account {
    profile: usize,
    utc: bool,
    /// Days (relative to the first day) when authentication-international starts, and its
    /// optional exception (country, start day).
    auth_international: Option<(i64, Option<(&'static str, i64)>)>,
}

#[derive(Default)]
struct Weighted {
    ids: Vec<u32>,
    cumulative: Vec<u64>,
}

impl Weighted {
    fn add(&mut self, id: u32, weight: u64) {
        let total = self.cumulative.last().copied().unwrap_or(0);
        self.ids.push(id);
        self.cumulative.push(total + weight);
    }

    fn pick(&self, rng: &mut Rng) -> u32 {
        let x = rng.below(*self.cumulative.last().expect("at least one WABA"));
        self.ids[self.cumulative.partition_point(|&c| c <= x)]
    }
}

impl Businesses {
    fn new(cfg: &GenConfig, rng: &mut Rng) -> Businesses {
        let mut accounts = Vec::with_capacity(cfg.wabas as usize);
        let mut all = Weighted::default();
        let mut domestic: Vec<Weighted> = COUNTRIES.iter().map(|_| Weighted::default()).collect();
        for i in 0..cfg.wabas {
            let profile = i as usize % WABA_PROFILES.len();
            let utc = rng.chance(120);
            let auth_international = rng.chance(200).then(|| {
                let start = -i64::from(rng.range(30, 540));
                let exception = rng.chance(400).then(|| {
                    let own = WABA_PROFILES[profile].iso2;
                    let others: Vec<&str> = AUTH_INTERNATIONAL_COUNTRIES
                        .iter()
                        .copied()
                        .filter(|&c| c != own)
                        .collect();
                    let country = others[rng.below(others.len() as u64) as usize];
                    // Sometimes before the stream, sometimes inside it, where it matters.
                    let day = i64::from(rng.range(0, cfg.days + 90)) - 90;
                    (country, day)
                });
                (start, exception)
            });
            // Heavy-tailed sizes (1 to 64): a few WABAs carry most of the traffic.
            let weight = 1u64 << rng.below(7);
            all.add(i, weight);
            let home = countries::country_index(WABA_PROFILES[profile].iso2)
                .expect("profiles name known countries");
            domestic[home].add(i, weight);
            accounts.push(Account {
                profile,
                utc,
                auth_international,
            });
        }
        Businesses {
            accounts,
            all,
            domestic,
        }
    }

    /// `","waba":"W1","phone":"15550001001","user":"` for every business phone, in order
    /// (WABA-major). A phone number is 1555, the WABA's number on four digits and the
    /// phone's on three (wider when the counts need it): digits only, unique.
    fn phone_fields(&self, cfg: &GenConfig) -> Vec<Box<[u8]>> {
        let mut out = Vec::with_capacity((cfg.wabas * cfg.phones_per_waba) as usize);
        let (dw, dp) = (
            cfg.wabas.to_string().len().max(4),
            cfg.phones_per_waba.to_string().len().max(3),
        );
        for waba in 1..=cfg.wabas {
            for phone in 1..=cfg.phones_per_waba {
                out.push(
                    format!("\",\"waba\":\"W{waba}\",\"phone\":\"1555{waba:0dw$}{phone:0dp$}\",\"user\":\"")
                        .into_bytes()
                        .into_boxed_slice(),
                );
            }
        }
        out
    }

    fn write_accounts<W: Write>(&self, w: &mut LineWriter<'_, W>, day0: i64) -> io::Result<()> {
        for (i, a) in self.accounts.iter().enumerate() {
            let p = &WABA_PROFILES[a.profile];
            let buf = w.raw();
            buf.extend_from_slice(b"{\"kind\":\"account\",\"waba\":\"W");
            buf.extend_from_slice(itoa::Buffer::new().format(i + 1).as_bytes());
            buf.extend_from_slice(b"\",\"portfolio\":\"B");
            buf.extend_from_slice(itoa::Buffer::new().format(i / 5 + 1).as_bytes());
            buf.extend_from_slice(b"\",\"timezone\":\"");
            buf.extend_from_slice(if a.utc { "UTC" } else { p.timezone }.as_bytes());
            buf.extend_from_slice(b"\",\"currency\":\"USD\",\"primary_country\":\"");
            buf.extend_from_slice(p.iso2.as_bytes());
            buf.push(b'"');
            if let Some((start, exception)) = a.auth_international {
                buf.extend_from_slice(b",\"auth_international\":{\"start\":\"");
                push_date(buf, day0 + start);
                buf.extend_from_slice(b"T00:00:00Z\"");
                if let Some((country, day)) = exception {
                    buf.extend_from_slice(b",\"exception_countries\":{\"");
                    buf.extend_from_slice(country.as_bytes());
                    buf.extend_from_slice(b"\":\"");
                    push_date(buf, day0 + day);
                    buf.extend_from_slice(b"T00:00:00Z\"}");
                }
                buf.push(b'}');
            }
            buf.extend_from_slice(b"}\n");
            w.end_line()?;
        }
        Ok(())
    }

    /// Who talks in the next session: a user (a third of sessions from a small set of regulars,
    /// so that windows, tiers and free allowances see repeat customers), a WABA (usually one
    /// of the user's country) and that WABA's phone the user usually talks to.
    fn pick(&self, cfg: &GenConfig, users: &UserBook, rng: &mut Rng) -> Party {
        let regulars = cfg.users / 50;
        let index = if regulars > 0 && rng.chance(300) {
            rng.below(regulars)
        } else {
            rng.below(cfg.users)
        };
        let (user, country) = users.user(index);
        let local = &self.domestic[country];
        let waba = if !local.ids.is_empty() && rng.chance(800) {
            local.pick(rng)
        } else {
            self.all.pick(rng)
        };
        let phone = if rng.chance(900) {
            (mix64(user ^ (u64::from(waba) << 48)) % u64::from(cfg.phones_per_waba)) as u32
        } else {
            rng.below(u64::from(cfg.phones_per_waba)) as u32
        };
        Party {
            user,
            phone: waba * cfg.phones_per_waba + phone,
        }
    }
}

/// Lines waiting for their hour to be written, by hour of `key`.
#[derive(Default)]
struct Buckets {
    /// Written hours are left empty and unallocated: reusing their (hour-sized) allocations
    /// for hours days ahead, which hold only a few follow-ups, would multiply the memory
    /// held by the buckets several times over.
    slots: Vec<Vec<Ev>>,
}

impl Buckets {
    fn push(&mut self, ev: Ev) {
        let b = (ev.key / SLICE) as usize;
        if b >= self.slots.len() {
            self.slots.resize_with(b + 1, Vec::new);
        }
        self.slots[b].push(ev);
    }

    /// Moves the session's lines (at most `budget` of them, counting repeats) into the
    /// buckets; returns how many it moved. Cutting the session short keeps a prefix of its
    /// lines in generation order, so a kept status always has its outbound line kept too.
    fn take(&mut self, sim: &mut Sim, slice_start: u32, mut budget: u64, cfg: &GenConfig) -> u64 {
        let mut moved = 0;
        for i in 0..sim.lines.len() {
            if budget == 0 {
                break;
            }
            let mut ev = sim.lines[i];
            // This slice is the earliest not yet written.
            ev.key = ev.key.max(slice_start);
            self.push(ev);
            budget -= 1;
            moved += 1;
            if budget > 0 && cfg.duplicate_permille > 0 && sim.rng.chance(cfg.duplicate_permille) {
                let mut copy = ev;
                copy.key += sim.rng.range(1, 600);
                copy.dup = true;
                self.push(copy);
                budget -= 1;
                moved += 1;
            }
        }
        moved
    }

    fn write<W: Write>(
        &mut self,
        b: usize,
        w: &mut LineWriter<'_, W>,
        stats: &mut GenStats,
    ) -> io::Result<()> {
        let Some(slot) = self.slots.get_mut(b) else {
            return Ok(());
        };
        let mut lines = std::mem::take(slot);
        // Stable: lines with the same key keep the order they were generated in (an outbound
        // before its `sent` status of the same second), which makes the order deterministic.
        lines.sort_by_key(|e| e.key);
        for ev in &lines {
            w.event(ev)?;
            stats.lines += 1;
            if ev.dup {
                stats.duplicates += 1;
            } else if ev.what.is_status() {
                stats.statuses += 1;
            } else if ev.what.is_inbound() {
                stats.inbound += 1;
            } else {
                stats.outbound += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use line::What;

    #[test]
    fn rejects_bad_configs_before_writing() {
        for cfg in [
            GenConfig {
                start: "2026-02-30".into(),
                ..GenConfig::default()
            },
            GenConfig {
                wabas: 0,
                ..GenConfig::default()
            },
            GenConfig {
                days: 0,
                ..GenConfig::default()
            },
            GenConfig {
                duplicate_permille: 1001,
                ..GenConfig::default()
            },
        ] {
            let mut out = Vec::new();
            let err = generate(&cfg, &mut out).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn weekends_are_quieter() {
        let day0 = time::days_from_civil(2026, 10, 3); // a Saturday
        assert!(slice_weight(day0, 12) < slice_weight(day0, 2 * 24 + 12));
    }

    #[test]
    fn what_is_consistent() {
        assert!(What::Read.is_status() && !What::Read.is_inbound());
        assert!(What::Text.is_service() && !What::Utility.is_service());
    }
}
