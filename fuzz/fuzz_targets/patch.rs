//! PATCH bodies (`PatchOp` messages) on a User and on a Group: any JSON must be applied
//! whole or refused with a 4xx SCIM error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scim::group::group_changes;
use scim::patch::PatchRequest;
use scim::user::UserDoc;
use serde_json::{json, Value};

fn user() -> &'static UserDoc {
    static USER: OnceLock<UserDoc> = OnceLock::new();
    USER.get_or_init(|| {
        UserDoc::from_request(&json!({
            "userName": "jane@example.com",
            "externalId": "00u1",
            "active": true,
            "name": {"givenName": "Jane", "familyName": "Doe"},
            "emails": [{"value": "jane@example.com", "type": "work", "primary": true}],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "mobile"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "Eng", "manager": {"value": "m1"}
            }
        }))
        .expect("the seed user is valid")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let request = match PatchRequest::parse(&body) {
        Ok(request) => request,
        Err(e) => {
            assert!((400..500).contains(&e.status), "{e:?}");
            return;
        }
    };
    match request.apply_to_user(user()) {
        // What a PATCH produced must survive storage and a later read.
        Ok(doc) => {
            let stored = doc.to_json();
            let read = UserDoc::from_stored(&stored).expect("a patched user reads back");
            assert_eq!(read.to_json(), stored);
        }
        Err(e) => assert!((400..500).contains(&e.status), "{e:?}"),
    }
    if let Err(e) = group_changes(&request, "g1") {
        assert!((400..500).contains(&e.status), "{e:?}");
    }
});
