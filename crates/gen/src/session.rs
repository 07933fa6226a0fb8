//! Conversations: what one user and one business phone say to each other, in time order, and
//! the delivery statuses the platform reports for each business message.
//!
//! A session is a short script (a support chat, a campaign, notifications, a one-time
//! password, an ad click) whose branches are taken with fixed per-mille odds. The scripts are
//! chosen to cross the rules' edges often: replies minutes or hours after the user wrote,
//! follow-ups before and after the 24-hour window closes, templates inside the window,
//! entry-point chats answered late, undelivered and failed messages, late deliveries.
//! Non-template messages are only sent while the user's service window is open, as the
//! platform enforces.

use crate::line::{Ev, What};
use crate::rng::{mix64, Rng};

const MINUTE: u32 = 60;
const HOUR: u32 = 3600;
const DAY: u32 = 86_400;

/// Who talks: the user's number and the business phone's index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Party {
    pub(crate) user: u64,
    pub(crate) phone: u32,
}

/// Runs sessions into `lines`, one at a time; the caller moves them into the stream.
pub(crate) struct Sim {
    pub(crate) rng: Rng,
    pub(crate) lines: Vec<Ev>,
    /// Sends at or after this instant are not made: the span is over.
    end: u32,
    shuffle_statuses: bool,
    next_message: u64,
    /// Makes two seeds' ids differ while keeping them unique within a stream.
    id_salt: u64,
}

/// `None` means "the span ended": a session's script stops at its first send past the end,
/// which `?` expresses.
type Go = Option<()>;

impl Sim {
    pub(crate) fn new(rng: Rng, end: u32, shuffle_statuses: bool, seed: u64) -> Sim {
        Sim {
            rng,
            lines: Vec::with_capacity(256),
            end,
            shuffle_statuses,
            next_message: 0,
            id_salt: mix64(seed ^ 0x1D5),
        }
    }

    /// Replaces `lines` with one session between `party` starting at `start` (< the end), in
    /// the order the lines were generated (each send followed by its statuses); never empty.
    pub(crate) fn session(&mut self, party: Party, start: u32) {
        debug_assert!(start < self.end);
        self.lines.clear();
        let r = self.rng.below(1000);
        // Every script's first send is at `start`, which is inside the span, so a session
        // always produces at least one line and the caller's loop always progresses.
        let _ = match r {
            0..435 => self.support_chat(party, start),
            435..695 => self.campaign(party, start),
            695..855 => self.notifications(party, start),
            855..955 => self.one_time_password(party, start),
            _ => self.ad_click(party, start),
        };
    }

    /// A user writes first: a support chat with a few rounds, then maybe a follow-up.
    fn support_chat(&mut self, p: Party, start: u32) -> Go {
        let mut t = start;
        // Some chats start from a Facebook Page button; ad clicks are their own script.
        let what = if self.rng.chance(12) {
            What::InboundPageCta
        } else {
            What::Inbound
        };
        self.inbound(p, t, what)?;
        let mut last_in = t;
        let rounds = self.rng.range(1, 6);
        self.exchange(p, &mut t, &mut last_in, rounds)?;
        self.aftermath(p, &mut t, &mut last_in)
    }

    /// A marketing template out of the blue; a few users answer, a few get a second one.
    fn campaign(&mut self, p: Party, start: u32) -> Go {
        let mut t = start;
        let what = if self.rng.chance(150) {
            What::MarketingLite
        } else {
            What::Marketing
        };
        self.outbound(p, t, what)?;
        if self.rng.chance(120) {
            t += self.rng.range(30, 6 * HOUR);
            self.inbound(p, t, What::Inbound)?;
            let mut last_in = t;
            let rounds = self.rng.range(1, 3);
            self.exchange(p, &mut t, &mut last_in, rounds)?;
        }
        if self.rng.chance(80) {
            t += self.rng.range(DAY, 3 * DAY);
            self.outbound(p, t, what)?;
        }
        Some(())
    }

    /// Order and shipping updates: utility templates hours apart.
    fn notifications(&mut self, p: Party, start: u32) -> Go {
        let mut t = start;
        self.outbound(p, t, What::Utility)?;
        for _ in 0..self.rng.below(3) {
            t += self.rng.range(30 * MINUTE, 30 * HOUR);
            self.outbound(p, t, What::Utility)?;
        }
        if self.rng.chance(150) {
            t += self.rng.range(MINUTE, 3 * HOUR);
            self.inbound(p, t, What::Inbound)?;
            let mut last_in = t;
            let rounds = self.rng.range(1, 2);
            self.exchange(p, &mut t, &mut last_in, rounds)?;
        }
        Some(())
    }

    /// A one-time password, sometimes sent again when the first is slow to arrive.
    fn one_time_password(&mut self, p: Party, start: u32) -> Go {
        let mut t = start;
        self.outbound(p, t, What::Authentication)?;
        if self.rng.chance(80) {
            t += self.rng.range(30, 120);
            self.outbound(p, t, What::Authentication)?;
        }
        if self.rng.chance(20) {
            t += self.rng.range(20, 5 * MINUTE);
            self.inbound(p, t, What::Inbound)?;
            let mut last_in = t;
            self.exchange(p, &mut t, &mut last_in, 1)?;
        }
        Some(())
    }

    /// A click on a click-to-WhatsApp ad (or a Page button): the free entry point window's
    /// cases. The business usually answers at once, sometimes hours later (late enough, now
    /// and then, to miss the 24 hours), then sends templates inside and after the 72 hours.
    fn ad_click(&mut self, p: Party, start: u32) -> Go {
        let mut t = start;
        let what = if self.rng.chance(800) {
            What::InboundCtwa
        } else {
            What::InboundPageCta
        };
        self.inbound(p, t, what)?;
        let mut last_in = t;
        if self.rng.chance(100) {
            t += self.rng.range(2 * HOUR, 22 * HOUR);
        }
        let rounds = self.rng.range(1, 5);
        self.exchange(p, &mut t, &mut last_in, rounds)?;
        if self.rng.chance(500) {
            t += self.rng.range(20 * HOUR, 60 * HOUR);
            let what = if self.rng.chance(600) {
                What::Marketing
            } else {
                What::Utility
            };
            self.outbound(p, t, what)?;
        }
        if self.rng.chance(150) {
            t = t.max(start + 72 * HOUR) + self.rng.range(0, 2 * DAY);
            self.outbound(p, t, What::Marketing)?;
        }
        Some(())
    }

    /// The business answers, the user maybe writes back, up to `rounds` times. `t` is the
    /// latest send of the session, `last_in` the latest inbound.
    fn exchange(&mut self, p: Party, t: &mut u32, last_in: &mut u32, rounds: u32) -> Go {
        for round in 0..rounds {
            *t += self.reply_delay();
            let replies = match self.rng.below(10) {
                0..6 => 1,
                6..9 => 2,
                _ => 3,
            };
            for _ in 0..replies {
                if *t - *last_in < DAY {
                    self.service(p, *t)?;
                } else {
                    // Too late for a free-form message: the platform demands a template.
                    self.outbound(p, *t, What::Utility)?;
                }
                *t += self.rng.range(2, 45);
            }
            // An order confirmation or receipt: a utility template inside the window.
            if self.rng.chance(70) {
                self.outbound(p, *t, What::Utility)?;
                *t += self.rng.range(2, 30);
            }
            if round + 1 == rounds || !self.rng.chance(550) {
                break;
            }
            *t += self.rng.range(10, 15 * MINUTE);
            self.inbound(p, *t, What::Inbound)?;
            *last_in = *t;
        }
        Some(())
    }

    /// After a chat: a business follow-up before or after the window closes, or the user
    /// coming back days later.
    fn aftermath(&mut self, p: Party, t: &mut u32, last_in: &mut u32) -> Go {
        let r = self.rng.below(1000);
        if r < 250 {
            *t += if self.rng.chance(450) {
                self.rng.range(HOUR, 20 * HOUR)
            } else {
                self.rng.range(25 * HOUR, 70 * HOUR)
            };
            if *t - *last_in < DAY && self.rng.chance(400) {
                self.service(p, *t)?;
            } else {
                self.any_template(p, *t)?;
            }
            if self.rng.chance(250) {
                *t += self.rng.range(30, 3 * HOUR);
                self.inbound(p, *t, What::Inbound)?;
                *last_in = *t;
                self.exchange(p, t, last_in, 2)?;
            }
        } else if r < 330 {
            *t += self.rng.range(DAY, 6 * DAY);
            self.inbound(p, *t, What::Inbound)?;
            *last_in = *t;
            let rounds = self.rng.range(1, 3);
            self.exchange(p, t, last_in, rounds)?;
        }
        Some(())
    }

    /// How long an agent or a bot takes to answer: mostly seconds, sometimes half an hour,
    /// now and then most of a day.
    fn reply_delay(&mut self) -> u32 {
        match self.rng.below(1000) {
            0..800 => self.rng.range(3, 2 * MINUTE),
            800..950 => self.rng.range(2 * MINUTE, 30 * MINUTE),
            _ => self.rng.range(HOUR, 20 * HOUR),
        }
    }

    fn service(&mut self, p: Party, t: u32) -> Go {
        let what = match self.rng.below(1000) {
            0..700 => What::Text,
            700..900 => What::Interactive,
            _ => What::Image,
        };
        self.outbound(p, t, what)
    }

    fn any_template(&mut self, p: Party, t: u32) -> Go {
        let what = match self.rng.below(1000) {
            0..500 => What::Utility,
            500..800 => What::Marketing,
            800..860 => What::MarketingLite,
            _ => What::Authentication,
        };
        self.outbound(p, t, what)
    }

    fn message_id(&mut self) -> u64 {
        let n = self.next_message;
        self.next_message += 1;
        // A bijection of a counter: unique across inbound and outbound, without a set.
        mix64(n ^ self.id_salt)
    }

    fn push(&mut self, at: u32, id: u64, what: What, p: Party) {
        self.lines.push(Ev {
            key: at,
            at,
            id,
            user: p.user,
            phone: p.phone,
            what,
            dup: false,
        });
    }

    fn inbound(&mut self, p: Party, t: u32, what: What) -> Go {
        if t >= self.end {
            return None;
        }
        let id = self.message_id();
        self.push(t, id, what, p);
        Some(())
    }

    fn outbound(&mut self, p: Party, t: u32, what: What) -> Go {
        if t >= self.end {
            return None;
        }
        let id = self.message_id();
        self.push(t, id, what, p);
        self.statuses(p, t, id, what.is_service());
        Some(())
    }

    /// The platform's reports on a message sent at `s`: mostly `sent`, `delivered` seconds
    /// later and often `read`; a few never reported, a few `failed`, a few delivered hours
    /// late (phone off), a rare `failed` that is delivered after all.
    fn statuses(&mut self, p: Party, s: u32, id: u64, service: bool) {
        let first = self.lines.len();
        let r = self.rng.below(1000);
        match r {
            0..25 => {}
            25..55 => {
                let failed = s + self.rng.range(1, 10);
                self.push(failed, id, What::Failed, p);
            }
            55..58 => {
                let sent = s + self.rng.range(0, 1);
                self.push(sent, id, What::Sent, p);
                let failed = sent + self.rng.range(1, 5);
                self.push(failed, id, What::Failed, p);
                let delivered = failed + self.rng.range(1, 10);
                self.push(delivered, id, What::Delivered, p);
            }
            58..88 => {
                let sent = s + self.rng.range(0, 1);
                self.push(sent, id, What::Sent, p);
            }
            _ => {
                let sent = s + self.rng.range(0, 1);
                self.push(sent, id, What::Sent, p);
                let delivered = if r < 110 {
                    sent + self.rng.range(HOUR, 20 * HOUR)
                } else {
                    sent + self.rng.range(1, 8)
                };
                self.push(delivered, id, What::Delivered, p);
                // Replies in a live chat are read far more often than templates.
                if self.rng.chance(if service { 800 } else { 550 }) {
                    let read = delivered
                        + if self.rng.chance(700) {
                            self.rng.range(2, MINUTE)
                        } else {
                            self.rng.range(MINUTE, 4 * HOUR)
                        };
                    self.push(read, id, What::Read, p);
                }
            }
        }
        if self.shuffle_statuses {
            if self.rng.chance(30) && self.lines.len() > first {
                // The business's own record of the send reaches the stream late (logged in a
                // batch), after the statuses the platform reported within half a minute.
                let quick = self.lines[first..]
                    .iter()
                    .map(|e| e.at)
                    .filter(|&at| at <= s + 30)
                    .max();
                if let Some(last) = quick {
                    self.lines[first - 1].key = last + self.rng.range(1, 10);
                }
            } else {
                // A retried webhook: one status arrives minutes late, out of time order.
                for i in first..self.lines.len() {
                    if self.rng.chance(8) {
                        self.lines[i].key += self.rng.range(MINUTE, 30 * MINUTE);
                    }
                }
            }
        }
    }
}
