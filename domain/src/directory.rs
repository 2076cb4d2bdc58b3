//! What the console shows of the directory: users and groups with search, filters, paging
//! and sorting, and one user or group in detail. Read-only; the identity providers own the
//! data and change it over SCIM.

use scim::filter::{parse_filter, Condition, Resource};
use scim::list::{Page, Sort};
use scim::user::UserDoc;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{ListQuery, Store, Table};

/// A user as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub active: bool,
    pub created_at: i64,
}

/// Which users or groups the console asks for.
#[derive(Debug, Clone)]
pub struct Browse<'a> {
    /// Words to find in userName, displayName, email or name (users), or displayName
    /// (groups); case-insensitive.
    pub search: &'a str,
    /// Users only: active or deactivated.
    pub active: Option<bool>,
    /// Only what this integration (by id) created.
    pub created_by: Option<&'a str>,
    pub sort: Option<Sort>,
    pub page: Page,
}

/// The console's search as a SCIM filter: the same parser, SQL and indexes as the API. The
/// search text becomes a JSON string, which is exactly a SCIM comparison value.
fn console_filter(
    resource: Resource,
    search: &str,
    active: Option<bool>,
) -> Result<Option<Condition>> {
    let mut parts = Vec::new();
    let search = search.trim();
    if !search.is_empty() {
        let q = Value::String(search.to_owned()).to_string();
        parts.push(match resource {
            Resource::User => format!(
                "(userName co {q} or displayName co {q} or emails.value co {q} \
                 or name.givenName co {q} or name.familyName co {q})"
            ),
            Resource::Group => format!("displayName co {q}"),
        });
    }
    if let Some(active) = active {
        parts.push(format!("active eq {active}"));
    }
    if parts.is_empty() {
        return Ok(None);
    }
    parse_filter(resource, &parts.join(" and "))
        .map(Some)
        .map_err(Error::Scim)
}

fn query(browse: &Browse<'_>, filter: Option<Condition>) -> ListQuery {
    ListQuery {
        filter,
        created_by: browse.created_by.map(str::to_owned),
        sort: browse.sort,
        offset: browse.page.offset(),
        limit: browse.page.count,
        ..ListQuery::default()
    }
}

/// A page of the organisation's users, and how many match.
pub async fn browse_users(
    store: &Store,
    organisation_id: &str,
    browse: &Browse<'_>,
) -> Result<(u64, Vec<UserSummary>)> {
    let filter = console_filter(Resource::User, browse.search, browse.active)?;
    let listed = store
        .list_users(organisation_id, query(browse, filter), false)
        .await?;
    let users = listed
        .page
        .into_iter()
        .map(|stored| {
            let row = stored.row;
            let doc = UserDoc::from_stored(&row.attributes)?;
            Ok(UserSummary {
                user_name: doc.user_name().to_owned(),
                display_name: doc.display_name().map(str::to_owned),
                email: doc.primary_email().map(str::to_owned),
                active: doc.active(),
                id: row.id,
                created_at: row.created_at,
            })
        })
        .collect::<Result<_>>()?;
    Ok((listed.total, users))
}

/// One user with everything stored about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDetail {
    pub summary: UserSummary,
    /// Every stored SCIM attribute as indented JSON (externalIds are per integration and not
    /// among them).
    pub attributes: String,
    pub updated_at: i64,
    pub created_by: Option<String>,
    /// (group id, displayName).
    pub groups: Vec<(String, String)>,
}

pub async fn user_detail(
    store: &Store,
    organisation_id: &str,
    id: &str,
) -> Result<Option<UserDetail>> {
    let Some(stored) = store.user(organisation_id, id, None, true).await? else {
        return Ok(None);
    };
    let row = stored.row;
    let doc = UserDoc::from_stored(&row.attributes)?;
    let groups = stored.related.unwrap_or_default();
    Ok(Some(UserDetail {
        summary: UserSummary {
            user_name: doc.user_name().to_owned(),
            display_name: doc.display_name().map(str::to_owned),
            email: doc.primary_email().map(str::to_owned),
            active: doc.active(),
            id: row.id.clone(),
            created_at: row.created_at,
        },
        attributes: serde_json::to_string_pretty(doc.attributes()).unwrap_or_default(),
        updated_at: row.updated_at,
        created_by: store.created_by(Table::Users, organisation_id, id).await?,
        groups,
    }))
}

/// A group as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSummary {
    pub id: String,
    pub display_name: String,
    pub members: i64,
    pub created_at: i64,
}

/// A page of the organisation's groups with their member counts, and how many match.
pub async fn browse_groups(
    store: &Store,
    organisation_id: &str,
    browse: &Browse<'_>,
) -> Result<(u64, Vec<GroupSummary>)> {
    let filter = console_filter(Resource::Group, browse.search, None)?;
    let listed = store
        .list_groups(organisation_id, query(browse, filter), false)
        .await?;
    let ids: Vec<String> = listed.page.iter().map(|g| g.row.id.clone()).collect();
    let counts = store.member_counts(organisation_id, ids).await?;
    let groups = listed
        .page
        .iter()
        .map(|g| &g.row)
        .map(|g| GroupSummary {
            id: g.id.clone(),
            display_name: g.display_name.clone(),
            members: counts
                .iter()
                .find(|(id, _)| *id == g.id)
                .map_or(0, |(_, n)| *n),
            created_at: g.created_at,
        })
        .collect();
    Ok((listed.total, groups))
}

/// A member of a group as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub user_name: String,
    pub display_name: Option<String>,
    pub active: bool,
}

/// One group with a page of its members (by userName).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDetail {
    pub summary: GroupSummary,
    pub updated_at: i64,
    pub created_by: Option<String>,
    pub members: Vec<Member>,
}

pub async fn group_detail(
    store: &Store,
    organisation_id: &str,
    id: &str,
    members: Page,
) -> Result<Option<GroupDetail>> {
    let Some(group) = store
        .group(organisation_id, id, None, false)
        .await?
        .map(|g| g.row)
    else {
        return Ok(None);
    };
    let (total, page) = store
        .member_page(
            organisation_id,
            id,
            i64::try_from(members.offset()).unwrap_or(i64::MAX),
            i64::from(members.count),
        )
        .await?;
    Ok(Some(GroupDetail {
        summary: GroupSummary {
            id: group.id,
            display_name: group.display_name,
            members: total,
            created_at: group.created_at,
        },
        updated_at: group.updated_at,
        created_by: store.created_by(Table::Groups, organisation_id, id).await?,
        members: page
            .into_iter()
            .map(|(id, user_name, display_name, active)| Member {
                id,
                user_name,
                display_name,
                active,
            })
            .collect(),
    }))
}
