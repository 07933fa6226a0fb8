//! The closed vocabularies of Meta's pricing: models, categories, pricing types, eras.
//! Their `as_str` forms are Meta's own values and part of wabill's public output format.

use crate::time::Date;

/// How a message is priced: per 24-hour conversation or per delivered message.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum PricingModel {
    Cbp,
    Pmp,
}

impl PricingModel {
    pub fn as_str(self) -> &'static str {
        match self {
            PricingModel::Cbp => "CBP",
            PricingModel::Pmp => "PMP",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "CBP" => Some(PricingModel::Cbp),
            "PMP" => Some(PricingModel::Pmp),
            _ => None,
        }
    }
}

/// A pricing category, as Meta writes it in webhooks (`pricing.category`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Category {
    Marketing,
    Utility,
    Authentication,
    AuthenticationInternational,
    MarketingLite,
    Service,
    ReferralConversion,
}

impl Category {
    pub const ALL: [Category; 7] = [
        Category::Marketing,
        Category::Utility,
        Category::Authentication,
        Category::AuthenticationInternational,
        Category::MarketingLite,
        Category::Service,
        Category::ReferralConversion,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Marketing => "marketing",
            Category::Utility => "utility",
            Category::Authentication => "authentication",
            Category::AuthenticationInternational => "authentication_international",
            Category::MarketingLite => "marketing_lite",
            Category::Service => "service",
            Category::ReferralConversion => "referral_conversion",
        }
    }
    /// Parses Meta's spelling; `authentication-international` (the status reference's
    /// spelling) is accepted as well.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "marketing" => Category::Marketing,
            "utility" => Category::Utility,
            "authentication" => Category::Authentication,
            "authentication_international" | "authentication-international" => {
                Category::AuthenticationInternational
            }
            "marketing_lite" => Category::MarketingLite,
            "service" => Category::Service,
            "referral_conversion" => Category::ReferralConversion,
            _ => return None,
        })
    }
    /// The rate-card column that prices this category. Marketing Messages API traffic is
    /// priced at the marketing rate (rules.md).
    pub fn rate_column(self) -> Category {
        match self {
            Category::MarketingLite => Category::Marketing,
            c => c,
        }
    }
}

/// Meta's `pricing.type`, plus `undelivered` for messages with no delivery yet.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum PricingType {
    Regular,
    FreeCustomerService,
    FreeEntryPoint,
    FreeTier,
    Undelivered,
}

impl PricingType {
    pub fn as_str(self) -> &'static str {
        match self {
            PricingType::Regular => "regular",
            PricingType::FreeCustomerService => "free_customer_service",
            PricingType::FreeEntryPoint => "free_entry_point",
            PricingType::FreeTier => "free_tier",
            PricingType::Undelivered => "undelivered",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "regular" => PricingType::Regular,
            "free_customer_service" => PricingType::FreeCustomerService,
            "free_entry_point" => PricingType::FreeEntryPoint,
            "free_tier" => PricingType::FreeTier,
            "undelivered" => PricingType::Undelivered,
            _ => return None,
        })
    }
}

/// The pricing era a send instant falls in (rules.md, "Eras").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Era {
    /// Before 2023-06-01: not supported.
    Before,
    /// Conversation-based pricing with categories, from 2023-06-01.
    Cbp,
    /// CBP with service conversations free, from 2024-11-01.
    CbpFreeService,
    /// Per-message pricing, from 2025-07-01.
    Pmp,
    /// PMP with charged service and utility-in-window, from 2026-10-01.
    PmpChargedService,
}

impl Era {
    /// First local date of each supported era, in order.
    pub fn starts() -> [(Era, Date); 4] {
        [
            (Era::Cbp, Date::from_ymd(2023, 6, 1).expect("date")),
            (
                Era::CbpFreeService,
                Date::from_ymd(2024, 11, 1).expect("date"),
            ),
            (Era::Pmp, Date::from_ymd(2025, 7, 1).expect("date")),
            (
                Era::PmpChargedService,
                Date::from_ymd(2026, 10, 1).expect("date"),
            ),
        ]
    }
    pub fn model(self) -> PricingModel {
        match self {
            Era::Before | Era::Cbp | Era::CbpFreeService => PricingModel::Cbp,
            Era::Pmp | Era::PmpChargedService => PricingModel::Pmp,
        }
    }
}

/// Where a user's inbound message came from, when it is a free entry point.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EntryPoint {
    /// Click-to-WhatsApp ad.
    Ctwa,
    /// Facebook Page call-to-action button.
    PageCta,
}

impl EntryPoint {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryPoint::Ctwa => "ctwa",
            EntryPoint::PageCta => "page_cta",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ctwa" => Some(EntryPoint::Ctwa),
            "page_cta" => Some(EntryPoint::PageCta),
            _ => None,
        }
    }
}
