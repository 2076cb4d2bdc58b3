//! SCIM provisioning of groups. Membership changes go to storage as changes, never as a
//! rewritten member list, so large groups cost what the change costs. Each operation is one
//! store job, which also reads back what the answer shows.

use scim::filter::Resource;
use scim::group::{group_changes, group_resource, GroupChange, GroupDoc};
use scim::patch::PatchRequest;
use scim::user::Meta;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::integrations::TokenOwner;
use crate::provisioning::{meta, Change, ListRequest};
use crate::store::{GroupRow, NewGroup, Store, Stored};
use crate::time;

/// A group as the SCIM API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub display_name: String,
    pub external_id: Option<String>,
    /// `None` when the client excluded members, so they were not loaded.
    pub members: Option<Vec<Value>>,
    pub meta: Meta,
}

impl Group {
    pub fn resource(&self) -> Value {
        group_resource(
            &self.display_name,
            self.external_id.as_deref(),
            self.members.clone(),
            &self.meta,
        )
    }

    fn from_stored(stored: Stored<GroupRow>, base_url: &str) -> Self {
        let Stored { row, related } = stored;
        Self {
            display_name: row.display_name,
            external_id: row.external_id,
            members: related.map(|members| {
                members
                    .into_iter()
                    .map(|(user_id, display)| {
                        json!({
                            "value": user_id,
                            "$ref": format!("{base_url}/Users/{user_id}"),
                            "display": display,
                            "type": "User",
                        })
                    })
                    .collect()
            }),
            meta: meta(
                base_url,
                "Groups",
                row.id,
                row.created_at,
                row.updated_at,
                row.version,
            ),
        }
    }
}

/// `POST /Groups`; `with_members` returns the members (with their display names).
pub async fn create_group(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    body: &Value,
    with_members: bool,
) -> Result<Group> {
    let doc = GroupDoc::from_request(body)?;
    let stored = store
        .insert_group(
            NewGroup {
                id: uuid::Uuid::new_v4().to_string(),
                organisation_id: owner.organisation_id.clone(),
                integration_id: owner.integration_id.clone(),
                display_name: doc.display_name,
                external_id: doc.external_id,
                members: doc.members,
                at: time::now_ms(),
            },
            with_members,
        )
        .await?;
    Ok(Group::from_stored(stored, base_url))
}

/// `GET /Groups/{id}`; `with_members` loads the members.
pub async fn get_group(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    with_members: bool,
) -> Result<Group> {
    let stored = store
        .group(
            &owner.organisation_id,
            id,
            Some(&owner.integration_id),
            with_members,
        )
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Group::from_stored(stored, base_url))
}

/// `GET /Groups`.
pub async fn list_groups(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    request: &ListRequest<'_>,
    with_members: bool,
) -> Result<(u64, Vec<Group>)> {
    let query = request.query(owner, Resource::Group)?;
    let listed = store
        .list_groups(&owner.organisation_id, query, with_members)
        .await?;
    Ok((
        listed.total,
        listed
            .page
            .into_iter()
            .map(|g| Group::from_stored(g, base_url))
            .collect(),
    ))
}

/// `PUT /Groups/{id}`: replaces the display name, externalId and the whole membership.
pub async fn replace_group(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    change: &Change<'_>,
    body: &Value,
) -> Result<Group> {
    let doc = GroupDoc::from_request(body)?;
    let changes = vec![
        GroupChange::DisplayName(doc.display_name),
        GroupChange::ExternalId(doc.external_id),
        GroupChange::SetMembers(doc.members),
    ];
    apply(store, owner, base_url, change, changes).await
}

/// `PATCH /Groups/{id}`: every operation applies, or none.
pub async fn patch_group(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    change: &Change<'_>,
    body: &Value,
) -> Result<Group> {
    let request = PatchRequest::parse(body)?;
    let changes = group_changes(&request, change.id)?;
    apply(store, owner, base_url, change, changes).await
}

async fn apply(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    change: &Change<'_>,
    changes: Vec<GroupChange>,
) -> Result<Group> {
    let stored = store
        .change_group(
            &owner.organisation_id,
            change.id,
            &owner.integration_id,
            change.if_match.map(<[i64]>::to_vec),
            changes,
            time::now_ms(),
            change.with_related,
        )
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Group::from_stored(stored, base_url))
}

/// `DELETE /Groups/{id}`: the group is gone for SCIM (RFC 7644 §3.6), its members stay; the
/// console keeps a record of it or erases it, by the integration's setting.
pub async fn delete_group(
    store: &Store,
    owner: &TokenOwner,
    id: &str,
    if_match: Option<&[i64]>,
) -> Result<()> {
    if store
        .delete_group(crate::provisioning::deletion(owner, id, if_match))
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}
