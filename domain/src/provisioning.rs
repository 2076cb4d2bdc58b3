//! SCIM provisioning of users: what the SCIM API does, composed from the protocol (the `scim`
//! crate) and storage. Every operation is scoped to the organisation that owns the token.

use std::collections::HashMap;

use scim::filter::{Condition, Resource};
use scim::list::{Page, Sort};
use scim::patch::PatchRequest;
use scim::user::{fold_case, Meta, UserDoc};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::{ListQuery, NewUser, Store, TokenOwner, UserRow};
use crate::time;

/// How often a write that lost a race with another writer is retried before giving up.
const MAX_ATTEMPTS: usize = 8;

/// A user as the SCIM API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub doc: UserDoc,
    pub meta: Meta,
    /// The read-only `groups` attribute, derived from group membership; `None` when not
    /// loaded because the client excluded it.
    pub groups: Option<Vec<Value>>,
}

impl User {
    pub fn resource(&self) -> Value {
        let mut resource = self.doc.to_resource(&self.meta);
        if let Some(groups) = self.groups.as_ref().filter(|g| !g.is_empty()) {
            resource["groups"] = Value::Array(groups.clone());
        }
        resource
    }

    fn from_row(row: UserRow, base_url: &str) -> Result<Self> {
        let doc = UserDoc::from_stored(&row.attributes)?.with_external_id(row.external_id);
        Ok(Self {
            doc,
            meta: meta(
                base_url,
                "Users",
                row.id,
                row.created_at,
                row.updated_at,
                row.version,
            ),
            groups: None,
        })
    }
}

/// `meta` of a resource of `kind` ("Users" or "Groups").
pub(crate) fn meta(
    base_url: &str,
    kind: &str,
    id: String,
    created: i64,
    modified: i64,
    version: i64,
) -> Meta {
    Meta {
        location: format!("{base_url}/{kind}/{id}"),
        id,
        created: time::rfc3339(created),
        last_modified: time::rfc3339(modified),
        version,
    }
}

/// Whether a stored version satisfies an `If-Match` list (`None`: no condition).
fn version_matches(if_match: Option<&[i64]>, version: i64) -> bool {
    if_match.is_none_or(|versions| versions.contains(&version))
}

/// Fills in each user's `groups`, with one query for the whole page.
async fn load_groups(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    users: &mut [User],
) -> Result<()> {
    let ids: Vec<&str> = users.iter().map(|u| u.meta.id.as_str()).collect();
    let mut by_user: HashMap<String, Vec<Value>> = HashMap::new();
    for (user_id, group_id, display) in store.groups_of_users(&owner.organisation_id, &ids).await? {
        by_user.entry(user_id).or_default().push(json!({
            "value": group_id,
            "$ref": format!("{base_url}/Groups/{group_id}"),
            "display": display,
            "type": "direct",
        }));
    }
    for user in users {
        user.groups = Some(by_user.remove(&user.meta.id).unwrap_or_default());
    }
    Ok(())
}

/// The folded keys and serialised document of a user about to be written.
struct Written {
    user_name_key: String,
    display_name_key: Option<String>,
    json: String,
    values: Vec<scim::user::IndexedValue>,
}

impl Written {
    fn of(doc: &UserDoc) -> Self {
        Self {
            user_name_key: doc.user_name_key(),
            display_name_key: doc.display_name().map(fold_case),
            json: doc.to_json(),
            values: doc.indexed_values(),
        }
    }

    fn row<'a>(
        &'a self,
        owner: &'a TokenOwner,
        id: &'a str,
        doc: &'a UserDoc,
        at: i64,
    ) -> NewUser<'a> {
        NewUser {
            id,
            organisation_id: &owner.organisation_id,
            integration_id: &owner.integration_id,
            user_name: doc.user_name(),
            user_name_key: &self.user_name_key,
            external_id: doc.external_id(),
            display_name: doc.display_name(),
            display_name_key: self.display_name_key.as_deref(),
            active: doc.active(),
            attributes: &self.json,
            values: &self.values,
            at,
        }
    }
}

/// `POST /Users`.
pub async fn create_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    body: &Value,
) -> Result<User> {
    let doc = UserDoc::from_request(body)?;
    let id = uuid::Uuid::new_v4().to_string();
    let at = time::now_ms();
    store
        .insert_user(&Written::of(&doc).row(owner, &id, &doc, at))
        .await?;
    Ok(User {
        meta: meta(base_url, "Users", id, at, at, 1),
        doc,
        groups: Some(Vec::new()),
    })
}

/// `GET /Users/{id}`; `with_groups` loads the derived `groups` attribute.
pub async fn get_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    with_groups: bool,
) -> Result<User> {
    let row = store
        .user(&owner.organisation_id, id, Some(&owner.integration_id))
        .await?
        .ok_or(Error::NotFound)?;
    let mut users = [User::from_row(row, base_url)?];
    if with_groups {
        load_groups(store, owner, base_url, &mut users).await?;
    }
    let [user] = users;
    Ok(user)
}

/// A list request: filter, sort and page, as the client sent them.
#[derive(Debug, Clone, Copy)]
pub struct ListRequest<'a> {
    pub filter: Option<&'a str>,
    pub sort: Option<Sort>,
    pub page: Page,
}

impl ListRequest<'_> {
    /// The parsed filter, for `resource`.
    pub(crate) fn condition(&self, resource: Resource) -> Result<Option<Condition>> {
        Ok(self
            .filter
            .map(|f| scim::filter::parse_filter(resource, f))
            .transpose()?)
    }

    /// The storage query for `owner`'s view, with the parsed `condition`.
    pub(crate) fn query<'q>(
        &self,
        owner: &'q TokenOwner,
        condition: Option<&'q Condition>,
    ) -> ListQuery<'q> {
        ListQuery {
            integration_id: Some(&owner.integration_id),
            filter: condition,
            sort: self.sort,
            offset: self.page.offset(),
            limit: self.page.count,
            created_by: None,
        }
    }
}

/// `GET /Users`: the page of users matching the filter, and the number of all matches.
pub async fn list_users(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    request: &ListRequest<'_>,
    with_groups: bool,
) -> Result<(u64, Vec<User>)> {
    let condition = request.condition(Resource::User)?;
    let query = request.query(owner, condition.as_ref());
    let (total, rows) = store.list_users(&owner.organisation_id, &query).await?;
    let mut users = rows
        .into_iter()
        .map(|r| User::from_row(r, base_url))
        .collect::<Result<Vec<_>>>()?;
    if with_groups && !users.is_empty() {
        load_groups(store, owner, base_url, &mut users).await?;
    }
    Ok((total, users))
}

/// `PUT /Users/{id}`: replaces every attribute (OneLogin's update and suspend).
pub async fn replace_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    if_match: Option<&[i64]>,
    body: &Value,
) -> Result<User> {
    let replacement = UserDoc::from_request(body)?;
    modify(store, owner, base_url, id, if_match, |_| {
        Ok(replacement.clone())
    })
    .await
}

/// `PATCH /Users/{id}`: all operations apply, or none.
pub async fn patch_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    if_match: Option<&[i64]>,
    body: &Value,
) -> Result<User> {
    let request = PatchRequest::parse(body)?;
    modify(store, owner, base_url, id, if_match, |current| {
        Ok(request.apply_to_user(current)?)
    })
    .await
}

/// `DELETE /Users/{id}`: removes the user if the integration is set to, otherwise
/// deactivates them (they stay readable and can be reactivated).
pub async fn delete_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    if_match: Option<&[i64]>,
) -> Result<()> {
    if owner.delete_removes {
        return if store
            .delete_user(&owner.organisation_id, id, if_match)
            .await?
        {
            Ok(())
        } else {
            Err(Error::NotFound)
        };
    }
    deactivate_user(store, owner, base_url, id, if_match).await
}

async fn deactivate_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    if_match: Option<&[i64]>,
) -> Result<()> {
    modify(store, owner, base_url, id, if_match, |current| {
        let mut next = current.clone();
        next.set_active(false);
        Ok(next)
    })
    .await
    .map(|_| ())
}

/// Read, change, write-if-unchanged; retried when another writer got there first, so
/// concurrent changes are never lost. `if_match` is checked against the version read.
async fn modify(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    if_match: Option<&[i64]>,
    change: impl Fn(&UserDoc) -> Result<UserDoc>,
) -> Result<User> {
    for _ in 0..MAX_ATTEMPTS {
        let row = store
            .user(&owner.organisation_id, id, Some(&owner.integration_id))
            .await?
            .ok_or(Error::NotFound)?;
        if !version_matches(if_match, row.version) {
            return Err(Error::PreconditionFailed);
        }
        let current = UserDoc::from_stored(&row.attributes)?.with_external_id(row.external_id);
        let next = change(&current)?;
        let at = time::now_ms().max(row.updated_at);
        let written = Written::of(&next);
        if store
            .update_user(&written.row(owner, id, &next, at), row.version)
            .await?
        {
            let mut users = [User {
                meta: meta(
                    base_url,
                    "Users",
                    row.id,
                    row.created_at,
                    at,
                    row.version + 1,
                ),
                doc: next,
                groups: None,
            }];
            load_groups(store, owner, base_url, &mut users).await?;
            let [user] = users;
            return Ok(user);
        }
    }
    Err(Error::Conflict(
        "the user is being changed by another request; try again".into(),
    ))
}
