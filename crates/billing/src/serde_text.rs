//! How the core's value types travel in the billing files: every amount, rate, currency, date,
//! month and timezone is a JSON string (`"12.50"`, `"EUR"`, `"2026-02-15"`, `"2026-02"`,
//! `"Europe/Paris"`). Amounts are never JSON numbers, which most readers turn into floats.

use chrono_tz::Tz;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use wabill_rating::{Currency, Date, Decimal, Month};

/// A value written as a string.
pub trait Text: Sized {
    fn to_text(&self) -> String;
    fn from_text(s: &str) -> Result<Self, String>;
}

impl Text for Decimal {
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse().map_err(|e| format!("{e}"))
    }
}

impl Text for Currency {
    fn to_text(&self) -> String {
        self.as_str().to_string()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Currency::parse(s).ok_or_else(|| {
            format!("'{s}' is not a currency code (three capital letters, e.g. EUR)")
        })
    }
}

impl Text for Date {
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Date::parse(s).ok_or_else(|| format!("'{s}' is not a date (YYYY-MM-DD)"))
    }
}

impl Text for Month {
    fn to_text(&self) -> String {
        self.to_string()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        Month::parse(s).ok_or_else(|| format!("'{s}' is not a month (YYYY-MM)"))
    }
}

impl Text for Tz {
    fn to_text(&self) -> String {
        self.name().to_string()
    }
    fn from_text(s: &str) -> Result<Self, String> {
        s.parse()
            .map_err(|_| format!("'{s}' is not an IANA timezone (e.g. Europe/Paris, UTC)"))
    }
}

/// `#[serde(with = "text")]`.
pub mod text {
    use super::*;
    pub fn serialize<T: Text, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        v.to_text().serialize(s)
    }
    pub fn deserialize<'de, T: Text, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let s = StrOrNumber::deserialize(d)?;
        T::from_text(s.as_str()?).map_err(de::Error::custom)
    }

    /// Accepts a string; a JSON number gets a message saying why not.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrOrNumber {
        Str(String),
        Number(serde_json::Number),
    }
    impl StrOrNumber {
        fn as_str<E: de::Error>(&self) -> Result<&str, E> {
            match self {
                StrOrNumber::Str(s) => Ok(s),
                StrOrNumber::Number(n) => Err(E::custom(format!(
                    "{n} must be written as a string (\"{n}\"): amounts and rates are exact decimals"
                ))),
            }
        }
    }
}

/// `#[serde(default, with = "opt_text")]`: `null` or absent is `None`.
pub mod opt_text {
    use super::*;
    pub fn serialize<T: Text, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        v.as_ref().map(Text::to_text).serialize(s)
    }
    pub fn deserialize<'de, T: Text, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        #[derive(Deserialize)]
        struct W<T: Text>(#[serde(with = "super::text")] T);
        Ok(Option::<W<T>>::deserialize(d)?.map(|w| w.0))
    }
}
