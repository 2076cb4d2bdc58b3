//! What the console shows of the directory: users and groups with search, filters, paging
//! and sorting, and one user or group in detail; and the records it keeps of those an
//! identity provider deleted (see `deleted_users` in the schema), which SCIM no longer sees.
//! Read-only; the identity providers own the data and change it over SCIM.

use scim::filter::{Attr, Condition, ElementCondition, Field, Op, Operand, Resource};
use scim::list::{Page, Sort};
use scim::user::{fold_case, UserDoc};

pub use model::{Deleted, GroupSummary, Member, UserSummary};

use crate::error::{Error, Result};
use crate::store::{DeletedGroupRow, DeletedQuery, DeletedUserRow, ListQuery, Store, Table};
use crate::time;

/// A user as the console lists it.
fn user_summary(
    id: String,
    doc: &UserDoc,
    created_at: i64,
    deleted: Option<Deleted>,
) -> UserSummary {
    UserSummary {
        id,
        user_name: doc.user_name().to_owned(),
        display_name: doc.display_name().map(str::to_owned),
        email: doc.primary_email().map(str::to_owned),
        active: doc.active(),
        created: time::moment(created_at),
        deleted,
    }
}

/// Who deleted a user or group (by the kind of the integration, `None` when it is gone), and
/// when.
fn deleted(by: Option<&str>, at: i64) -> Deleted {
    Deleted {
        by: by.and_then(|kind| kind.parse().ok()),
        at: time::moment(at),
    }
}

/// Which users or groups the console asks for.
#[derive(Debug, Clone)]
pub struct Browse<'a> {
    /// Words to find in userName, displayName, email or name (users), or displayName
    /// (groups); case-insensitive.
    pub search: &'a str,
    /// Users only: active or deactivated.
    pub active: Option<bool>,
    /// The records of deleted users or groups instead of the current ones (`active` does
    /// not apply to them).
    pub deleted: bool,
    /// Only what this integration (by id) created.
    pub created_by: Option<&'a str>,
    pub sort: Option<Sort>,
    pub page: Page,
}

/// The console's search as the condition a SCIM filter compiles to, so it runs on the same
/// SQL and indexes as the API's filters: the search text, case-folded as filters compare,
/// in any of the names and emails (users) or the display name (groups).
fn console_filter(resource: Resource, search: &str, active: Option<bool>) -> Option<Condition> {
    let mut parts = Vec::new();
    let search = search.trim();
    if !search.is_empty() {
        let text = || Operand::Str(fold_case(search));
        let contains = |attr: Attr| Condition::Compare(attr, Op::Co, text());
        parts.push(match resource {
            Resource::User => Condition::Or(vec![
                contains(Attr::UserName),
                contains(Attr::DisplayName),
                Condition::AnyElement(
                    "emails",
                    ElementCondition::Compare(Field::Value, Op::Co, text()),
                ),
                contains(Attr::Value("name.givenName".into())),
                contains(Attr::Value("name.familyName".into())),
            ]),
            Resource::Group => contains(Attr::DisplayName),
        });
    }
    if let Some(active) = active {
        parts.push(Condition::Compare(
            Attr::Active,
            Op::Eq,
            Operand::Bool(active),
        ));
    }
    match parts.len() {
        0 => None,
        1 => parts.pop(),
        _ => Some(Condition::And(parts)),
    }
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

/// A page of the organisation's users, or of its records of deleted ones, and how many
/// match.
pub async fn browse_users(
    store: &Store,
    organisation_id: &str,
    browse: &Browse<'_>,
) -> Result<(u64, Vec<UserSummary>)> {
    if browse.deleted {
        let (total, rows) = store
            .deleted_users(organisation_id, deleted_query(browse))
            .await?;
        let users = rows
            .into_iter()
            .map(|row| Ok(DeletedUser::of(row)?.summary))
            .collect::<Result<_>>()?;
        return Ok((total, users));
    }
    let filter = console_filter(Resource::User, browse.search, browse.active);
    let listed = store
        .list_users(organisation_id, query(browse, filter), false)
        .await?;
    let users = listed
        .page
        .into_iter()
        .map(|stored| {
            let row = stored.row;
            let doc = UserDoc::from_stored(&row.body.attributes)?;
            Ok(user_summary(row.id, &doc, row.created_at, None))
        })
        .collect::<Result<_>>()?;
    Ok((listed.total, users))
}

/// The store's query for a page of deleted records: the console's search, case-folded as
/// the records' search keys are.
fn deleted_query(browse: &Browse<'_>) -> DeletedQuery {
    DeletedQuery {
        search: scim::user::fold_case(browse.search.trim()),
        created_by: browse.created_by.map(str::to_owned),
        sort: browse.sort,
        offset: browse.page.offset(),
        limit: browse.page.count,
    }
}

/// A deleted user's record, read.
struct DeletedUser {
    summary: UserSummary,
    doc: UserDoc,
    row: DeletedUserRow,
}

impl DeletedUser {
    fn of(row: DeletedUserRow) -> Result<Self> {
        let doc = UserDoc::from_stored(&row.attributes)?;
        let deleted = deleted(row.deleted_by.as_deref(), row.deleted_at);
        Ok(Self {
            summary: user_summary(row.id.clone(), &doc, row.created_at, Some(deleted)),
            doc,
            row,
        })
    }
}

/// One user, or the record of a deleted one, with everything stored about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDetail {
    pub summary: UserSummary,
    /// Every stored SCIM attribute as indented JSON. A current user's externalIds are per
    /// integration and not among them; a deleted user's record shows the one its deleting
    /// integration kept.
    pub attributes: String,
    pub updated_at: i64,
    pub created_by: Option<String>,
    /// (group id, displayName): the groups now, or for a deleted user those at deletion.
    pub groups: Vec<(String, String)>,
    /// The records of (other) deleted users who had this userName, newest first: (id,
    /// deletion time).
    pub deleted_before: Vec<(String, i64)>,
    /// For a deleted user: the user who has their userName now (id, creation time).
    pub recreated_as: Option<(String, i64)>,
}

/// Records of earlier users with the same userName the console links, at most.
const LINKED_RECORDS: i64 = 10;

/// The user `id`, or else the record of a deleted user who had that id.
pub async fn user_detail(
    store: &Store,
    organisation_id: &str,
    id: &str,
) -> Result<Option<UserDetail>> {
    let Some(stored) = store.user(organisation_id, id, None, true).await? else {
        return deleted_user_detail(store, organisation_id, id).await;
    };
    let row = stored.row;
    let doc = UserDoc::from_stored(&row.body.attributes)?;
    let (deleted_before, _) = store
        .same_user_name(organisation_id, &doc.user_name_key(), LINKED_RECORDS)
        .await?;
    Ok(Some(UserDetail {
        summary: user_summary(row.id.clone(), &doc, row.created_at, None),
        attributes: pretty(&doc),
        updated_at: row.updated_at,
        created_by: store.created_by(Table::Users, organisation_id, id).await?,
        groups: stored.related.unwrap_or_default(),
        deleted_before,
        recreated_as: None,
    }))
}

async fn deleted_user_detail(
    store: &Store,
    organisation_id: &str,
    id: &str,
) -> Result<Option<UserDetail>> {
    let Some(row) = store.deleted_user(organisation_id, id).await? else {
        return Ok(None);
    };
    let DeletedUser { summary, doc, row } = DeletedUser::of(row)?;
    let (mut deleted_before, recreated_as) = store
        .same_user_name(organisation_id, &doc.user_name_key(), LINKED_RECORDS + 1)
        .await?;
    deleted_before.retain(|(other, _)| *other != row.id);
    deleted_before.truncate(LINKED_RECORDS as usize);
    Ok(Some(UserDetail {
        summary,
        attributes: pretty(&doc.with_external_id(row.external_id)),
        updated_at: row.updated_at,
        created_by: row.created_by,
        groups: serde_json::from_str(&row.groups)
            .map_err(|e| Error::internal("the groups of a deleted user do not decode", e))?,
        deleted_before,
        recreated_as,
    }))
}

fn pretty(doc: &UserDoc) -> String {
    serde_json::to_string_pretty(doc.attributes()).unwrap_or_default()
}

/// The record of a deleted group as the console lists it.
fn deleted_group_summary(row: &DeletedGroupRow) -> GroupSummary {
    GroupSummary {
        id: row.id.clone(),
        display_name: row.display_name.clone(),
        members: row.member_count,
        created: time::moment(row.created_at),
        deleted: Some(deleted(row.deleted_by.as_deref(), row.deleted_at)),
    }
}

/// A page of the organisation's groups with their member counts, or of its records of
/// deleted ones, and how many match.
pub async fn browse_groups(
    store: &Store,
    organisation_id: &str,
    browse: &Browse<'_>,
) -> Result<(u64, Vec<GroupSummary>)> {
    if browse.deleted {
        let (total, rows) = store
            .deleted_groups(organisation_id, deleted_query(browse))
            .await?;
        return Ok((total, rows.iter().map(deleted_group_summary).collect()));
    }
    let filter = console_filter(Resource::Group, browse.search, None);
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
            display_name: g.body.display_name.clone(),
            members: counts
                .iter()
                .find(|(id, _)| *id == g.id)
                .map_or(0, |(_, n)| *n),
            created: time::moment(g.created_at),
            deleted: None,
        })
        .collect();
    Ok((listed.total, groups))
}

/// One group, or the record of a deleted one, with a page of its members (by userName).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDetail {
    pub summary: GroupSummary,
    pub updated_at: i64,
    pub created_by: Option<String>,
    pub members: Vec<Member>,
}

/// The group `id`, or else the record of a deleted group that had that id.
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
        return deleted_group_detail(store, organisation_id, id, members).await;
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
            display_name: group.body.display_name,
            members: total,
            created: time::moment(group.created_at),
            deleted: None,
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

async fn deleted_group_detail(
    store: &Store,
    organisation_id: &str,
    id: &str,
    page: Page,
) -> Result<Option<GroupDetail>> {
    let Some(row) = store.deleted_group(organisation_id, id).await? else {
        return Ok(None);
    };
    let members: Vec<(String, String, Option<String>, i64)> = serde_json::from_str(&row.members)
        .map_err(|e| Error::internal("the members of a deleted group do not decode", e))?;
    let offset = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    Ok(Some(GroupDetail {
        summary: deleted_group_summary(&row),
        updated_at: row.updated_at,
        created_by: row.created_by,
        members: members
            .into_iter()
            .skip(offset)
            .take(page.count as usize)
            .map(|(id, user_name, display_name, active)| Member {
                id,
                user_name,
                display_name,
                active: active != 0,
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scim::filter::parse_filter;

    /// The console's search is what the API's filter of the same meaning compiles to.
    #[test]
    fn the_search_is_the_condition_of_its_scim_filter() {
        let cases = [
            (
                Resource::User,
                "Ada \"L\"",
                Some(false),
                r#"(userName co "Ada \"L\"" or displayName co "Ada \"L\"" or emails.value co "Ada \"L\"" or name.givenName co "Ada \"L\"" or name.familyName co "Ada \"L\"") and active eq false"#,
            ),
            (
                Resource::User,
                "ADA",
                None,
                r#"userName co "ADA" or displayName co "ADA" or emails.value co "ADA" or name.givenName co "ADA" or name.familyName co "ADA""#,
            ),
            (Resource::User, "  ", Some(true), "active eq true"),
            (Resource::Group, "Sales", None, r#"displayName co "Sales""#),
        ];
        for (resource, search, active, filter) in cases {
            let parsed = parse_filter(resource, filter).unwrap();
            assert_eq!(
                sql_of(console_filter(resource, search, active)),
                sql_of(Some(parsed)),
                "{filter}"
            );
        }
        assert_eq!(console_filter(Resource::Group, "", None), None);
    }

    /// A condition with its nested ands and ors flattened, which is how SQL reads them.
    fn sql_of(condition: Option<Condition>) -> Option<Condition> {
        fn flat(c: Condition) -> Condition {
            match c {
                Condition::And(parts) => Condition::And(merge(parts, true)),
                Condition::Or(parts) => Condition::Or(merge(parts, false)),
                other => other,
            }
        }
        fn merge(parts: Vec<Condition>, and: bool) -> Vec<Condition> {
            parts
                .into_iter()
                .map(flat)
                .flat_map(|p| match p {
                    Condition::And(inner) if and => inner,
                    Condition::Or(inner) if !and => inner,
                    other => vec![other],
                })
                .collect()
        }
        condition.map(flat)
    }
}
