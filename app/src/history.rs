//! The change history a user's or group's page shows: one line per change, newest first,
//! "title: Engineer → Manager, by OneLogin, 2 h ago".

use leptos::prelude::*;
use leptos_router::components::A;
use serde::{Deserialize, Serialize};

use model::IntegrationKind;

use crate::components::Moment;

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub at: Moment,
    /// "2 h ago", as of the page's rendering.
    pub ago: String,
    /// The kind of integration that made the change.
    pub by: Option<IntegrationKind>,
    pub request_id: Option<String>,
    pub what: What,
}

/// What changed, as the page it is shown on sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum What {
    Created,
    Deleted,
    Changed {
        path: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// On a user's page: the group they joined or left.
    Joined {
        group_id: String,
        group: String,
    },
    Left {
        group_id: String,
        group: String,
    },
    /// On a group's page: the member added or removed.
    Added {
        user_id: String,
        user: String,
    },
    Removed {
        user_id: String,
        user: String,
    },
}

/// An attribute path as an admin reads it: enterprise attributes without their schema URN.
fn short_path(path: &str) -> &str {
    match path.strip_prefix("urn:") {
        Some(rest) => rest.rsplit(':').next().unwrap_or(rest),
        None => path,
    }
}

/// The text of a change, without who made it.
pub fn describe(what: &What) -> String {
    match what {
        What::Created => "created".into(),
        What::Deleted => "deleted".into(),
        What::Changed { path, new, .. } if path == "active" && new.is_some() => {
            if new.as_deref() == Some("false") {
                "deactivated".into()
            } else {
                "activated".into()
            }
        }
        What::Changed { path, old, new } => format!(
            "{}: {} → {}",
            short_path(path),
            old.as_deref().unwrap_or("(none)"),
            new.as_deref().unwrap_or("(none)")
        ),
        What::Joined { group, .. } => format!("added to group {group}"),
        What::Left { group, .. } => format!("removed from group {group}"),
        What::Added { user, .. } => format!("{user} added"),
        What::Removed { user, .. } => format!("{user} removed"),
    }
}

/// A link the line carries: the group joined or left, the member added or removed.
fn link(what: &What) -> Option<String> {
    match what {
        What::Joined { group_id, .. } | What::Left { group_id, .. } => {
            Some(format!("/groups/{group_id}"))
        }
        What::Added { user_id, .. } | What::Removed { user_id, .. } => {
            Some(format!("/users/{user_id}"))
        }
        _ => None,
    }
}

#[cfg(feature = "ssr")]
impl HistoryItem {
    /// An entry of the history of the user or group `subject`, as of `now`.
    pub fn of(entry: domain::history::HistoryEntry, subject: &str, now: i64) -> Self {
        use domain::history::Action;
        let member = entry.member.clone().unwrap_or_default();
        let what = match entry.action {
            Action::Created => What::Created,
            Action::Deleted => What::Deleted,
            Action::Changed => What::Changed {
                path: entry.path.unwrap_or_default(),
                old: entry.old,
                new: entry.new,
            },
            // A membership change seen from the member's page.
            Action::MemberAdded if entry.resource_id != subject => What::Joined {
                group_id: entry.resource_id,
                group: entry.resource_name,
            },
            Action::MemberRemoved if entry.resource_id != subject => What::Left {
                group_id: entry.resource_id,
                group: entry.resource_name,
            },
            Action::MemberAdded => What::Added {
                user_id: member.0,
                user: member.1,
            },
            Action::MemberRemoved => What::Removed {
                user_id: member.0,
                user: member.1,
            },
        };
        Self {
            at: domain::time::moment(entry.at),
            ago: ago(now - entry.at),
            by: crate::ssr::kind_of(entry.by),
            request_id: entry.request_id,
            what,
        }
    }
}

/// "just now", "5 min ago", "2 h ago", "3 days ago" for an age in milliseconds.
#[cfg(any(test, feature = "ssr"))]
fn ago(age_ms: i64) -> String {
    let minutes = age_ms.max(0) / 60_000;
    match minutes {
        0 => "just now".into(),
        1..=59 => format!("{minutes} min ago"),
        60..=2879 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    }
}

/// The history of a user or group, newest first; `noun` names it in the empty message.
#[component]
pub fn Timeline(items: Vec<HistoryItem>, noun: &'static str) -> impl IntoView {
    if items.is_empty() {
        return view! {
            <p class="empty">{format!("No change to this {noun} is recorded. Changes are kept as long as the activity log.")}</p>
        }
        .into_any();
    }
    view! {
        <ol class="timeline" data-testid="history">
            {items.into_iter().map(|item| {
                let text = describe(&item.what);
                let by = item.by.map_or("an integration since removed", IntegrationKind::label);
                let title = match &item.request_id {
                    Some(id) => format!("{} (request {id})", item.at.utc_text),
                    None => item.at.utc_text.clone(),
                };
                view! {
                    <li>
                        {match link(&item.what) {
                            Some(href) => view! { <A href=href>{text}</A> }.into_any(),
                            None => view! { <span>{text}</span> }.into_any(),
                        }}
                        {format!(", by {by}, ")}
                        <time datetime=item.at.rfc3339.clone() title=title>{item.ago.clone()}</time>
                    </li>
                }
            }).collect_view()}
        </ol>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_as_an_admin_would_say_them() {
        let changed = |path: &str, old: Option<&str>, new: Option<&str>| What::Changed {
            path: path.into(),
            old: old.map(Into::into),
            new: new.map(Into::into),
        };
        let cases = [
            (
                changed("title", Some("Engineer"), Some("Manager")),
                "title: Engineer → Manager",
            ),
            (
                changed("active", Some("true"), Some("false")),
                "deactivated",
            ),
            (changed("active", Some("false"), Some("true")), "activated"),
            (
                changed("nickName", None, Some("Ada")),
                "nickName: (none) → Ada",
            ),
            (
                changed(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                    Some("R&D"),
                    None,
                ),
                "department: R&D → (none)",
            ),
            (
                What::Left {
                    group_id: "g".into(),
                    group: "Sales".into(),
                },
                "removed from group Sales",
            ),
            (
                What::Added {
                    user_id: "u".into(),
                    user: "Ada".into(),
                },
                "Ada added",
            ),
            (What::Deleted, "deleted"),
        ];
        for (what, text) in cases {
            assert_eq!(describe(&what), text);
        }
    }

    #[test]
    fn ages_round_down_to_the_unit_shown() {
        for (ms, text) in [
            (-5_000, "just now"),
            (59_999, "just now"),
            (60_000, "1 min ago"),
            (2 * 3_600_000 + 59 * 60_000, "2 h ago"),
            (47 * 3_600_000, "47 h ago"),
            (3 * 86_400_000, "3 days ago"),
        ] {
            assert_eq!(ago(ms), text, "{ms}");
        }
    }
}
