//! The bounds of every input string, in one place: how long each field of an event line or of
//! Meta's webhook envelope may be, and where the figure comes from (Meta's own where it has
//! one; otherwise a generous bound, decisions.md D72). Events and envelopes are checked against
//! these when they are parsed, before a value is stored or echoed in an error. Instants have
//! their range in `time` (D70); numbers on the wire are instants only, and the count of events
//! per request is the service's (`MAX_EVENTS_PER_REQUEST`).

/// The longest call, in seconds, that a `duration` may give: 31 days. Meta documents no
/// limit; anything longer is a mistake to report rather than a bill to send.
pub const CALL_SECONDS_MAX: i64 = 31 * 24 * 3600;

/// One field's bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The field, as events.md or Meta's envelope names it.
    pub field: &'static str,
    /// Most characters (Unicode code points, as JSON Schema's `maxLength` counts them) the
    /// value may have; its UTF-8 is at most four times as many bytes (decisions.md D77).
    pub max_chars: usize,
    /// Where the figure comes from.
    pub source: &'static str,
}

/// A message id: wabill's `id`, Meta's `messages[].id` and `statuses[].id` (a wamid).
pub const MESSAGE_ID: Limit = Limit {
    field: "id",
    max_chars: 256,
    source: "Meta documents no length for a wamid (`wamid.` and base64, 50-100 bytes seen); \
             256 leaves room",
};
/// A WABA id: wabill's `waba` and `portfolio`, Meta's `entry[].id`.
pub const ACCOUNT_ID: Limit = Limit {
    field: "waba",
    max_chars: 64,
    source: "Meta's WABA and business ids are numeric strings of at most 20 digits (64-bit); \
             wabill's own lines may name accounts freely, within 64 characters",
};
/// The agent who sent an outbound message (D44).
pub const AGENT: Limit = Limit {
    field: "agent",
    max_chars: 256,
    source: "wabill's own field; a name or an id of the platform's agent",
};
/// A message `type` (`template`, `text`, `image`, ...).
pub const MESSAGE_TYPE: Limit = Limit {
    field: "type",
    max_chars: 64,
    source: "Meta's message types are single words of at most 11 bytes",
};
/// Any word of a closed vocabulary (`kind`, `status`, `category`, `entry_point`, `api`,
/// `object`, `field`, and Meta's `pricing_model`, `pricing.category`, `pricing.type`).
pub const WORD: Limit = Limit {
    field: "kind, status, category, entry_point, api, object, pricing.*",
    max_chars: 64,
    source: "Meta's and events.md's vocabularies: the longest word is 26 bytes",
};
/// Meta's `conversation.id`.
pub const CONVERSATION_ID: Limit = Limit {
    field: "conversation.id",
    max_chars: 256,
    source: "Meta documents no length (32 hex digits seen); 256 leaves room",
};
/// An IANA timezone name.
pub const TIMEZONE: Limit = Limit {
    field: "timezone",
    max_chars: 64,
    source: "the IANA database's longest name is 32 bytes",
};
/// An instant given as text (RFC 3339 or Unix seconds).
pub const INSTANT_TEXT: Limit = Limit {
    field: "at, timestamp",
    max_chars: 40,
    source: "RFC 3339 with nine digits of fraction and an offset is 35 bytes",
};
/// A phone number: wabill's `phone` and `user`, Meta's `from` and `display_phone_number`.
pub const PHONE: Limit = Limit {
    field: "phone, user",
    max_chars: 32,
    source: "E.164: at most 15 digits (a leading + and, in Meta's display_phone_number, \
             spaces and dashes are allowed around them)",
};
/// A business-scoped user id (BSUID): wabill's `user_id` and `new_user_id`, Meta's
/// `from_user_id`, `contacts[].user_id`, `statuses[].recipient_user_id`, the parent BSUIDs and a
/// system message's `user_id` (decisions.md D100).
pub const USER_ID: Limit = Limit {
    field: "user_id",
    max_chars: 136,
    source: "Meta: a two-letter country code, a dot and up to 128 letters and digits \
             (`ENT.` after the country for a parent BSUID): at most 135 bytes",
};
/// A template's name: `template` of an outbound event, `name` of a template line, Meta's
/// `message_template_name` (decisions.md D151).
pub const TEMPLATE_NAME: Limit = Limit {
    field: "template, name",
    max_chars: 512,
    source: "Meta: a template name has at most 512 characters",
};
/// Countries in `auth_international.exception_countries`.
pub const EXCEPTION_COUNTRIES: usize = 300;

/// Every bound, for the documentation's table.
pub const ALL: &[Limit] = &[
    MESSAGE_ID,
    ACCOUNT_ID,
    AGENT,
    MESSAGE_TYPE,
    WORD,
    CONVERSATION_ID,
    TIMEZONE,
    INSTANT_TEXT,
    PHONE,
    USER_ID,
    TEMPLATE_NAME,
];

/// `Ok` when `value` is within `limit`, else why not (naming the length and the limit, never
/// echoing the value).
pub fn check(value: &str, limit: Limit) -> Result<(), String> {
    // No more bytes than the limit: no more characters either, without counting them.
    if value.len() <= limit.max_chars {
        return Ok(());
    }
    let chars = value.chars().count();
    if chars <= limit.max_chars {
        Ok(())
    } else {
        Err(format!(
            "is {chars} characters long, more than the limit of {} characters",
            limit.max_chars
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_value_is_refused_without_being_echoed() {
        let long = "x".repeat(300_000);
        let e = check(&long, MESSAGE_ID).unwrap_err();
        assert_eq!(
            e,
            "is 300000 characters long, more than the limit of 256 characters"
        );
        assert!(check(&"x".repeat(256), MESSAGE_ID).is_ok());
        // Characters, as JSON Schema's maxLength counts them (the OpenAPI document states
        // these bounds): 256 four-byte characters are taken, 257 are not.
        assert!(check(&"😀".repeat(256), MESSAGE_ID).is_ok());
        let e = check(&"é".repeat(257), MESSAGE_ID).unwrap_err();
        assert!(e.starts_with("is 257 characters long"), "{e}");
    }
}
