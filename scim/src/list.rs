//! Paging (RFC 7644 §3.4.2.4) and the ListResponse message.

use serde_json::Value;

use crate::error::ScimError;
use crate::schema;

/// Page size when the client names none.
pub const DEFAULT_COUNT: u32 = 100;
/// The largest page served; a larger `count` is clamped to it (RFC 7644 §3.4.2.4 lets the
/// service provider return fewer results than asked).
pub const MAX_COUNT: u32 = 1000;

/// A requested page: 1-based `start_index` and at most `count` resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start_index: u64,
    pub count: u32,
}

impl Page {
    /// Reads `startIndex` and `count` as sent in a query string. Values below 1 (or below 0
    /// for count) are treated as 1 (or 0), as the RFC says; non-numbers are errors.
    pub fn from_query(start_index: Option<&str>, count: Option<&str>) -> Result<Self, ScimError> {
        let start_index = match start_index {
            None => 1,
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| {
                    ScimError::invalid_value(format!("startIndex {s:?} is not an integer"))
                })?
                .max(1) as u64,
        };
        let count = match count {
            None => DEFAULT_COUNT,
            Some(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| ScimError::invalid_value(format!("count {s:?} is not an integer")))?
                .clamp(0, i64::from(MAX_COUNT)) as u32,
        };
        Ok(Self { start_index, count })
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        self.start_index - 1
    }
}

/// What a list may be sorted by (`sortBy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Id,
    /// Users only; compared case-insensitively.
    UserName,
    /// Compared case-insensitively.
    DisplayName,
    ExternalId,
    Created,
    LastModified,
}

/// `sortBy` and `sortOrder` (RFC 7644 §3.4.2.3). Without `sortBy`, lists come oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Sort {
    /// Reads `sortBy` and `sortOrder` for a list of `resource`.
    pub fn from_query(
        resource: crate::filter::Resource,
        sort_by: Option<&str>,
        sort_order: Option<&str>,
    ) -> Result<Option<Self>, ScimError> {
        let descending = match sort_order.map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder {o:?} is not ascending or descending"
                )))
            }
        };
        let Some(name) = sort_by.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let schema_prefix = match resource {
            crate::filter::Resource::User => schema::USER,
            crate::filter::Resource::Group => schema::GROUP,
        };
        let bare = crate::user::strip_prefix_ci(name, schema_prefix)
            .and_then(|r| r.strip_prefix(':'))
            .unwrap_or(name);
        let keys: &[(&str, SortKey)] = match resource {
            crate::filter::Resource::User => &[
                ("id", SortKey::Id),
                ("userName", SortKey::UserName),
                ("displayName", SortKey::DisplayName),
                ("externalId", SortKey::ExternalId),
                ("meta.created", SortKey::Created),
                ("meta.lastModified", SortKey::LastModified),
            ],
            crate::filter::Resource::Group => &[
                ("id", SortKey::Id),
                ("displayName", SortKey::DisplayName),
                ("externalId", SortKey::ExternalId),
                ("meta.created", SortKey::Created),
                ("meta.lastModified", SortKey::LastModified),
            ],
        };
        keys.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(bare))
            .map(|(_, key)| {
                Some(Sort {
                    key: *key,
                    descending,
                })
            })
            .ok_or_else(|| {
                let names: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
                ScimError::invalid_value(format!(
                    "cannot sort by {name:?}; supported: {}",
                    names.join(", ")
                ))
            })
    }
}

/// A ListResponse: `totalResults` counts every match, `itemsPerPage` what this page holds.
pub fn list_response(total: u64, page: Page, resources: Vec<Value>) -> Value {
    serde_json::json!({
        "schemas": [schema::LIST_RESPONSE],
        "totalResults": total,
        "startIndex": page.start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_parsing() {
        let cases = [
            ((None, None), (1, DEFAULT_COUNT)),
            ((Some("1"), Some("100")), (1, 100)),
            ((Some("0"), Some("-5")), (1, 0)),
            ((Some("-3"), Some("2")), (1, 2)),
            ((Some("201"), Some("100000")), (201, MAX_COUNT)),
            ((Some(" 7 "), Some("0")), (7, 0)),
        ];
        for ((s, c), (start, count)) in cases {
            let p = Page::from_query(s, c).unwrap();
            assert_eq!((p.start_index, p.count), (start, count), "{s:?} {c:?}");
        }
    }

    #[test]
    fn non_numbers_are_invalid_value() {
        for (s, c) in [(Some("x"), None), (None, Some("1.5")), (Some(""), None)] {
            assert_eq!(
                Page::from_query(s, c).unwrap_err().scim_type,
                Some(crate::ScimType::InvalidValue)
            );
        }
    }

    #[test]
    fn sorting() {
        use crate::filter::Resource;
        assert_eq!(
            Sort::from_query(Resource::User, None, Some("descending")).unwrap(),
            None
        );
        assert_eq!(
            Sort::from_query(Resource::User, Some("USERNAME"), Some("Descending")).unwrap(),
            Some(Sort {
                key: SortKey::UserName,
                descending: true
            })
        );
        assert_eq!(
            Sort::from_query(
                Resource::Group,
                Some("urn:ietf:params:scim:schemas:core:2.0:Group:displayName"),
                None
            )
            .unwrap(),
            Some(Sort {
                key: SortKey::DisplayName,
                descending: false
            })
        );
        assert!(Sort::from_query(Resource::Group, Some("userName"), None).is_err());
        assert!(Sort::from_query(Resource::User, Some("title"), None).is_err());
        assert!(Sort::from_query(Resource::User, Some("id"), Some("up")).is_err());
    }

    #[test]
    fn items_per_page_is_the_page_length() {
        let page = Page {
            start_index: 3,
            count: 10,
        };
        let r = list_response(42, page, vec![Value::Null, Value::Null]);
        assert_eq!(r["totalResults"], 42);
        assert_eq!(r["itemsPerPage"], 2);
        assert_eq!(r["startIndex"], 3);
    }
}
