//! SCIM provisioning of users: what the SCIM API does, composed from the protocol (the `scim`
//! crate) and storage. Every operation is scoped to the organisation that owns the token.

use scim::list::Page;
use scim::patch::PatchRequest;
use scim::user::{Meta, UserDoc};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{NewUser, Store, TokenOwner, UserRow};
use crate::time;

/// How often a write that lost a race with another writer is retried before giving up.
const MAX_ATTEMPTS: usize = 8;

/// A user as the SCIM API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub doc: UserDoc,
    pub meta: Meta,
}

impl User {
    pub fn resource(&self) -> Value {
        self.doc.to_resource(&self.meta)
    }

    fn from_row(row: UserRow, base_url: &str) -> Result<Self> {
        let doc = UserDoc::from_stored(&row.attributes)?;
        Ok(Self {
            doc,
            meta: meta(
                base_url,
                row.id,
                row.created_at,
                row.updated_at,
                row.version,
            ),
        })
    }
}

fn meta(base_url: &str, id: String, created: i64, modified: i64, version: i64) -> Meta {
    Meta {
        location: format!("{base_url}/Users/{id}"),
        id,
        created: time::rfc3339(created),
        last_modified: time::rfc3339(modified),
        version,
    }
}

fn new_user<'a>(
    owner: &'a TokenOwner,
    id: &'a str,
    doc: &'a UserDoc,
    key: &'a str,
    json: &'a str,
    at: i64,
) -> NewUser<'a> {
    NewUser {
        id,
        organisation_id: &owner.organisation_id,
        integration_id: &owner.integration_id,
        user_name: doc.user_name(),
        user_name_key: key,
        external_id: doc.external_id(),
        display_name: doc.display_name(),
        active: doc.active(),
        attributes: json,
        at,
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
    let key = doc.user_name_key();
    let json = doc.to_json();
    store
        .insert_user(&new_user(owner, &id, &doc, &key, &json, at))
        .await?;
    Ok(User {
        meta: meta(base_url, id, at, at, 1),
        doc,
    })
}

/// `GET /Users/{id}`.
pub async fn get_user(store: &Store, owner: &TokenOwner, base_url: &str, id: &str) -> Result<User> {
    let row = store
        .user(&owner.organisation_id, id)
        .await?
        .ok_or(Error::NotFound)?;
    User::from_row(row, base_url)
}

/// `GET /Users`: the page of users matching `filter`, and the number of all matches.
pub async fn list_users(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    filter: Option<&str>,
    page: Page,
) -> Result<(u64, Vec<User>)> {
    let condition = filter.map(scim::filter::parse_user_filter).transpose()?;
    let (total, rows) = store
        .list_users(
            &owner.organisation_id,
            condition.as_ref(),
            page.offset(),
            page.count,
        )
        .await?;
    let users = rows
        .into_iter()
        .map(|r| User::from_row(r, base_url))
        .collect::<Result<_>>()?;
    Ok((total, users))
}

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

/// A page of the organisation's users for the console, oldest first, and the total.
pub async fn browse_users(
    store: &Store,
    organisation_id: &str,
    page: Page,
) -> Result<(u64, Vec<UserSummary>)> {
    let (total, rows) = store
        .list_users(organisation_id, None, page.offset(), page.count)
        .await?;
    let users = rows
        .into_iter()
        .map(|row| {
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
    Ok((total, users))
}

/// `PUT /Users/{id}`: replaces every attribute (OneLogin's update and suspend).
pub async fn replace_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    body: &Value,
) -> Result<User> {
    let replacement = UserDoc::from_request(body)?;
    modify(store, owner, base_url, id, |_| Ok(replacement.clone())).await
}

/// `PATCH /Users/{id}`: all operations apply, or none.
pub async fn patch_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    body: &Value,
) -> Result<User> {
    let request = PatchRequest::parse(body)?;
    modify(store, owner, base_url, id, |current| {
        Ok(request.apply_to_user(current)?)
    })
    .await
}

/// `DELETE /Users/{id}`: deactivates the user, who stays readable and can be reactivated.
pub async fn deactivate_user(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
) -> Result<()> {
    modify(store, owner, base_url, id, |current| {
        let mut next = current.clone();
        next.set_active(false);
        Ok(next)
    })
    .await
    .map(|_| ())
}

/// Read, change, write-if-unchanged; retried when another writer got there first, so
/// concurrent changes are never lost.
async fn modify(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    change: impl Fn(&UserDoc) -> Result<UserDoc>,
) -> Result<User> {
    for _ in 0..MAX_ATTEMPTS {
        let row = store
            .user(&owner.organisation_id, id)
            .await?
            .ok_or(Error::NotFound)?;
        let current = UserDoc::from_stored(&row.attributes)?;
        let next = change(&current)?;
        let at = time::now_ms().max(row.updated_at);
        let key = next.user_name_key();
        let json = next.to_json();
        if store
            .update_user(&new_user(owner, id, &next, &key, &json, at), row.version)
            .await?
        {
            return Ok(User {
                meta: meta(base_url, row.id, row.created_at, at, row.version + 1),
                doc: next,
            });
        }
    }
    Err(Error::Conflict(
        "the user is being changed by another request; try again".into(),
    ))
}
