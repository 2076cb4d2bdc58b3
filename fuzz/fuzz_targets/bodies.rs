//! POST and PUT bodies of Users and Groups, and the activity log's redaction of any request
//! body: any bytes must give a resource or a 4xx SCIM error, and redaction must never let a
//! password through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim::group::GroupDoc;
use scim::user::UserDoc;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Some(stored) = scim::redact::request_body(data) {
        assert!(stored.len() <= scim::redact::MAX_STORED_BODY + 64);
        if let Ok(value) = serde_json::from_str::<Value>(&stored) {
            assert_no_password(&value, &stored);
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match UserDoc::from_request(&body) {
        Ok(doc) => {
            let stored = doc.to_json();
            let read = UserDoc::from_stored(&stored).expect("a created user reads back");
            assert_eq!(read.user_name(), doc.user_name());
            let _ = doc.indexed_values();
        }
        Err(e) => assert!((400..500).contains(&e.status), "{e:?}"),
    }
    if let Err(e) = GroupDoc::from_request(&body) {
        assert!((400..500).contains(&e.status), "{e:?}");
    }
});

/// Every attribute named `password` (in any case, URN-qualified or not) holds the marker.
fn assert_no_password(value: &Value, stored: &str) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let name = key.rsplit(':').next().unwrap_or(key);
                if name.eq_ignore_ascii_case("password") {
                    assert_eq!(inner, scim::redact::REDACTED, "{stored}");
                } else {
                    assert_no_password(inner, stored);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| assert_no_password(v, stored)),
        _ => {}
    }
}
