//! Every way an estimate can be refused, by stable code, with a message naming what is wrong.

use wabill_estimate::{
    estimate, estimate_with_compare, AuthIntl, EstimateError, EstimateInput, Share, Target,
    TrafficCategory, TrafficLine, MAX_MESSAGES,
};
use wabill_rating::{Currency, Month, Tariff};

fn input(month: &str, target: Target, category: TrafficCategory, messages: u64) -> EstimateInput {
    let mut i = EstimateInput::new(
        Month::parse(month).unwrap(),
        Currency::parse("USD").unwrap(),
    );
    i.traffic.push(TrafficLine {
        target,
        category,
        messages,
    });
    i
}

fn brazil(month: &str, category: TrafficCategory, messages: u64) -> EstimateInput {
    input(month, Target::Market("Brazil".into()), category, messages)
}

fn refused(tariff: &Tariff, i: &EstimateInput) -> (String, String) {
    let e = estimate(tariff, i).unwrap_err();
    (e.code().to_string(), e.to_string())
}

#[test]
fn input_errors_have_stable_codes_and_say_what_is_wrong() {
    let t = Tariff::bundled();
    use TrafficCategory::*;

    let (code, msg) = refused(
        &t,
        &input("2026-11", Target::Market("Narnia".into()), Utility, 1),
    );
    assert_eq!(code, "unknown_market");
    assert!(
        msg.contains("'Narnia'") && msg.contains("Rest of Africa"),
        "{msg}"
    );

    let (code, msg) = refused(
        &t,
        &input("2026-11", Target::Country("ZZ".into()), Utility, 1),
    );
    assert_eq!(
        (code.as_str(), msg.contains("'ZZ'")),
        ("unknown_country", true)
    );

    // Kazakhstan is a market only from 2026-10-01.
    let (code, msg) = refused(
        &t,
        &input("2026-09", Target::Market("Kazakhstan".into()), Utility, 1),
    );
    assert_eq!(code, "unknown_market");
    assert!(msg.contains("no country on 2026-09-01"), "{msg}");

    let (code, msg) = refused(&t, &brazil("2023-05", Marketing, 1));
    assert_eq!(code, "unsupported_month");
    assert!(msg.contains("2023-05"), "{msg}");

    let mut i = brazil("2026-11", Service, 10);
    i.phones = 0;
    assert_eq!(refused(&t, &i).0, "no_phones");

    let mut i = brazil("2026-11", Service, 10);
    i.traffic.clear();
    assert_eq!(refused(&t, &i).0, "no_traffic");
    assert_eq!(refused(&t, &brazil("2026-11", Service, 0)).0, "no_traffic");

    let mut i = brazil("2026-11", Utility, 10);
    i.utility_in_window = Share::parse("share", "60%").unwrap();
    i.entry_point_share = Share::parse("share", "400.1‰").unwrap();
    let (code, msg) = refused(&t, &i);
    assert_eq!(code, "inconsistent_shares");
    assert!(msg.contains("40.01%") && msg.contains("60%"), "{msg}");
    // Exactly 100 % is consistent: every utility message is in a window of some kind.
    i.entry_point_share = Share::parse("share", "40%").unwrap();
    let e = estimate(&t, &i).unwrap();
    assert_eq!(e.rows[0].tally.free_entry_point, 4);

    let mut i = brazil("2026-11", Authentication, 10);
    i.auth_international = AuthIntl::Yes;
    assert_eq!(refused(&t, &i).0, "missing_primary_country");
    i.primary_country = Some("Brasil".into());
    assert_eq!(refused(&t, &i).0, "unknown_country");

    let (code, msg) = refused(&t, &brazil("2026-11", Marketing, MAX_MESSAGES + 1));
    assert_eq!(code, "too_many_messages");
    assert!(msg.contains(&(MAX_MESSAGES + 1).to_string()), "{msg}");

    let i = brazil("2024-02", Marketing, 1);
    let e = estimate_with_compare(&t, &i).unwrap_err();
    assert_eq!(e.code(), "no_previous_era");
}

#[test]
fn missing_rates_pass_the_cores_words_through_once_per_cause() {
    let t = Tariff::bundled();
    // data/SOURCES.md gap 4: the PMP 2025-07-01 USD card has no Brazil authentication row.
    let mut i = brazil("2025-08", TrafficCategory::Authentication, 40);
    i.traffic.push(TrafficLine {
        target: Target::Market("Brazil".into()),
        category: TrafficCategory::Marketing,
        messages: 5,
    });
    let e = estimate(&t, &i).unwrap_err();
    assert_eq!(e.code(), "missing_rate");
    assert!(e.is_unratable());
    let EstimateError::MissingRate { causes } = &e else {
        panic!("{e:?}")
    };
    // Forty messages, one cause, named by currency, model, market, category and first date.
    assert_eq!(
        causes,
        &vec![(
            "no PMP rate for currency USD, market 'Brazil', category authentication on 2025-08-01"
                .to_string(),
            40
        )]
    );
}
