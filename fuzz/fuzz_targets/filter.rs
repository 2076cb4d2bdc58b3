//! The `filter` query parameter of `GET /Users` and `GET /Groups`, and the `sortBy`,
//! `attributes` and paging parameters beside it: any text must give a condition or a 400.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scim::filter::{parse_filter, Resource};
use scim::list::{Page, Sort};
use scim::projection::Projection;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for resource in [Resource::User, Resource::Group] {
        if let Err(e) = parse_filter(resource, text) {
            assert_eq!(e.status, 400, "{e:?}");
        }
        let _ = Sort::from_query(resource, Some(text), Some(text));
    }
    let _ = Projection::from_query(Some(text), None);
    let _ = Projection::from_query(None, Some(text));
    let _ = Page::from_query(Some(text), Some(text));
});
