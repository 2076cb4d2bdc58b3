//! SCIM provisioning of users: what the SCIM API does, composed from the protocol (the `scim`
//! crate) and storage. Every operation is scoped to the organisation that owns the token,
//! and each is one store job.

use scim::filter::Resource;
use scim::list::{Page, Sort};
use scim::patch::PatchRequest;
use scim::user::{Meta, UserDoc};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::integrations::TokenOwner;
use crate::scim_resource::{ScimResource, Scope};
use crate::store::{ListQuery, Stored, UserBody, UserRow};
use crate::time;

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

    /// The user as stored, with `doc` when the caller has it already (after a write).
    fn of(stored: Stored<UserRow>, doc: Option<UserDoc>, base_url: &str) -> Result<Self> {
        let Stored { row, related } = stored;
        let doc = match doc {
            Some(doc) => doc,
            None => UserDoc::from_stored(&row.body.attributes)?,
        }
        .with_external_id(row.external_id);
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
            groups: related.map(|groups| {
                groups
                    .into_iter()
                    .map(|(group_id, display)| {
                        json!({
                            "value": group_id,
                            "$ref": format!("{base_url}/Groups/{group_id}"),
                            "display": display,
                            "type": "direct",
                        })
                    })
                    .collect()
            }),
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

/// A list request: filter, sort and page, as the client sent them.
#[derive(Debug, Clone, Copy)]
pub struct ListRequest<'a> {
    pub filter: Option<&'a str>,
    pub sort: Option<Sort>,
    pub page: Page,
}

impl ListRequest<'_> {
    /// The storage query for `owner`'s view of `resource`, with the filter parsed.
    pub(crate) fn query(&self, owner: &TokenOwner, resource: Resource) -> Result<ListQuery> {
        Ok(ListQuery {
            integration_id: Some(owner.integration_id.clone()),
            filter: self
                .filter
                .map(|f| scim::filter::parse_filter(resource, f))
                .transpose()?,
            sort: self.sort,
            offset: self.page.offset(),
            limit: self.page.count,
            created_by: None,
        })
    }
}

/// Which user or group a write changes, on what condition, and how the answer looks.
pub struct Change<'a> {
    pub id: &'a str,
    /// `If-Match` versions; `None` when absent or `*`.
    pub if_match: Option<&'a [i64]>,
    /// Whether the answer carries the related resources: a user's `groups`, a group's
    /// `members`.
    pub with_related: bool,
}

impl ScimResource for User {
    const RESOURCE: Resource = Resource::User;
    const KIND: &'static str = "User";
    const RELATED: &'static str = "groups";

    type Body = UserBody;

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn from_stored(stored: Stored<UserRow>, base_url: &str) -> Result<Self> {
        User::of(stored, None, base_url)
    }

    fn body(&self) -> Value {
        self.resource()
    }

    /// A new user is in no group: there is nothing related to load.
    async fn create(s: Scope<'_>, body: &Value, _: bool) -> Result<Self> {
        let doc = UserDoc::from_request(body)?;
        let id = uuid::Uuid::new_v4().to_string();
        let at = time::now_ms();
        s.store
            .insert_user(
                &s.owner.organisation_id,
                &s.owner.integration_id,
                &id,
                &doc,
                at,
            )
            .await?;
        Ok(User {
            meta: meta(s.base_url, "Users", id, at, at, 1),
            doc,
            groups: Some(Vec::new()),
        })
    }

    /// Replaces every attribute (OneLogin's update and suspend).
    async fn replace(s: Scope<'_>, change: &Change<'_>, body: &Value) -> Result<Self> {
        let replacement = UserDoc::from_request(body)?;
        modify(s, change, move |_| Ok(replacement)).await
    }

    async fn patch(s: Scope<'_>, change: &Change<'_>, body: &Value) -> Result<Self> {
        let request = PatchRequest::parse(body)?;
        modify(
            s,
            change,
            move |current| Ok(request.apply_to_user(current)?),
        )
        .await
    }
}

/// Reads the user, changes it and writes it back, in one store job, so no concurrent
/// change is lost. `if_match` is checked against the version read.
async fn modify(
    s: Scope<'_>,
    change: &Change<'_>,
    apply: impl FnOnce(&UserDoc) -> Result<UserDoc> + Send + 'static,
) -> Result<User> {
    let (doc, stored) = s
        .store
        .update_user(
            s.target(change.id, change.if_match),
            change.with_related,
            move |current, row| Ok((apply(current)?, time::now_ms().max(row.updated_at))),
        )
        .await?
        .ok_or(Error::NotFound)?;
    User::of(stored, Some(doc), s.base_url)
}
