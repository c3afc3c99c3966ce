//! The seeds' bounce webhooks (`pmta-bounce`, `mailwizz-bounce`) as anyone could write
//! them: every field in any shape is read or refused with the field named, never a panic.
//! A crasher found here is kept below as a test of its own.
#![allow(clippy::unwrap_used)]

use ee_app::AppError;
use ee_app::feedback::intake::{ReportedBounce, reported_event};
use ee_core::feedback::{Class, Rules, Source};
use proptest::prelude::*;
use serde_json::{Value, json};

const NOW: i64 = 1_764_000_000_000;

fn read(body: &ReportedBounce) -> Result<ee_core::feedback::DeliveryEvent, AppError> {
    reported_event(&Rules::shipped(), NOW, Source::PmtaWebhook, body)
}

/// Found by the property test below: epoch seconds so large that milliseconds overflow
/// panicked (debug) or wrapped (release).
#[test]
fn a_time_past_the_end_of_time_is_refused_not_a_panic() {
    let body = ReportedBounce {
        email: Some("a@example.org".into()),
        r#type: Some("hard".into()),
        occurred_at: Some(json!(i64::MAX / 10)),
        ..ReportedBounce::default()
    };
    let Err(AppError::Invalid(errors)) = read(&body) else {
        panic!("refused");
    };
    assert_eq!(errors.0[0].field, "occurred_at");
}

/// Many senders write the code as a string: `"550"` is read as 550; anything else that
/// is not a code is refused.
#[test]
fn a_reply_code_may_be_a_string_of_digits() {
    let body: ReportedBounce = serde_json::from_value(
        json!({"email": "gone@example.org", "type": "hard", "code": "550", "diagnostic": "5.1.1 user unknown"}),
    )
    .unwrap();
    assert_eq!(read(&body).unwrap().reply.code, Some(550));
    for bad in [
        json!("five"),
        json!(-1),
        json!(70_000),
        json!([550]),
        json!(99),
    ] {
        let body: ReportedBounce =
            serde_json::from_value(json!({"email": "a@b.example", "type": "hard", "code": bad}))
                .unwrap();
        let Err(AppError::Invalid(errors)) = read(&body) else {
            panic!("{bad} refused");
        };
        assert_eq!(errors.0[0].field, "code", "{bad}");
    }
}

#[test]
fn the_seeds_body_is_read() {
    let body: ReportedBounce =
        serde_json::from_value(json!({"email": "gone@example.org", "type": "hard"})).unwrap();
    let event = read(&body).unwrap();
    assert_eq!(event.class, Class::Hard);
}

fn any_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,40}".prop_map(Value::String),
        "-?[0-9]{1,22}".prop_map(Value::String),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z".prop_map(Value::String),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn any_bounce_body_is_read_or_refused_with_its_field(
        email in proptest::option::of(".{0,60}|[a-z]{1,10}@[a-z]{1,10}\\.[a-z]{2,3}"),
        kind in proptest::option::of("hard|soft|block|complaint|spam|internal|delivered|deferred|.{0,10}"),
        code in proptest::option::of(prop_oneof![
            any::<u16>().prop_map(|c| json!(c)),
            any::<u16>().prop_map(|c| json!(c.to_string())),
            any_json(),
        ]),
        diagnostic in proptest::option::of(".{0,200}"),
        message_id in proptest::option::of(".{0,60}"),
        occurred_at in proptest::option::of(any_json()),
    ) {
        let body = ReportedBounce {
            email,
            r#type: kind,
            code,
            diagnostic,
            message_id,
            campaign_id: None,
            occurred_at,
        };
        match read(&body) {
            Ok(event) => {
                prop_assert!(event.reply.code.is_none_or(|c| (200..600).contains(&c)));
                prop_assert!(!event.recipient.is_empty());
            }
            Err(AppError::Invalid(errors)) => {
                let field = errors.0[0].field.as_str();
                prop_assert!(["email", "type", "code", "occurred_at"].contains(&field), "{field}");
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }
}
