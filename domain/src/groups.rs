//! SCIM provisioning of groups. Membership changes go to storage as changes, never as a
//! rewritten member list, so large groups cost what the change costs.

use scim::filter::Resource;
use scim::group::{group_changes, group_resource, GroupChange, GroupDoc};
use scim::patch::PatchRequest;
use scim::user::{fold_case, Meta};
use std::collections::HashMap;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::provisioning::{meta, ListRequest};
use crate::store::{GroupRow, NewGroup, Store, TokenOwner};
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

    fn from_row(row: GroupRow, base_url: &str) -> Self {
        Self {
            display_name: row.display_name,
            external_id: row.external_id,
            members: None,
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

/// Fills in the members of each group, with one query for the whole page.
async fn load_members(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    groups: &mut [Group],
) -> Result<()> {
    let ids: Vec<&str> = groups.iter().map(|g| g.meta.id.as_str()).collect();
    let mut by_group: HashMap<String, Vec<Value>> = HashMap::new();
    for (group_id, user_id, display) in store.group_members(&owner.organisation_id, &ids).await? {
        by_group.entry(group_id).or_default().push(json!({
            "value": user_id,
            "$ref": format!("{base_url}/Users/{user_id}"),
            "display": display,
            "type": "User",
        }));
    }
    for group in groups {
        group.members = Some(by_group.remove(&group.meta.id).unwrap_or_default());
    }
    Ok(())
}

/// A group read back after a write or for a GET, with its members unless excluded.
async fn one(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    row: GroupRow,
    with_members: bool,
) -> Result<Group> {
    let mut groups = [Group::from_row(row, base_url)];
    if with_members {
        load_members(store, owner, base_url, &mut groups).await?;
    }
    let [group] = groups;
    Ok(group)
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
    let id = uuid::Uuid::new_v4().to_string();
    let at = time::now_ms();
    let key = fold_case(&doc.display_name);
    store
        .insert_group(
            &NewGroup {
                id: &id,
                organisation_id: &owner.organisation_id,
                integration_id: &owner.integration_id,
                display_name: &doc.display_name,
                display_name_key: &key,
                external_id: doc.external_id.as_deref(),
                at,
            },
            &doc.members,
        )
        .await?;
    let mut groups = [Group {
        display_name: doc.display_name,
        external_id: doc.external_id,
        members: None,
        meta: meta(base_url, "Groups", id, at, at, 1),
    }];
    if with_members {
        load_members(store, owner, base_url, &mut groups).await?;
    }
    let [group] = groups;
    Ok(group)
}

/// `GET /Groups/{id}`; `with_members` loads the members.
pub async fn get_group(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    with_members: bool,
) -> Result<Group> {
    let row = store
        .group(&owner.organisation_id, id, Some(&owner.integration_id))
        .await?
        .ok_or(Error::NotFound)?;
    one(store, owner, base_url, row, with_members).await
}

/// `GET /Groups`.
pub async fn list_groups(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    request: &ListRequest<'_>,
    with_members: bool,
) -> Result<(u64, Vec<Group>)> {
    let condition = request.condition(Resource::Group)?;
    let query = request.query(owner, condition.as_ref());
    let (total, rows) = store.list_groups(&owner.organisation_id, &query).await?;
    let mut groups: Vec<Group> = rows
        .into_iter()
        .map(|r| Group::from_row(r, base_url))
        .collect();
    if with_members && !groups.is_empty() {
        load_members(store, owner, base_url, &mut groups).await?;
    }
    Ok((total, groups))
}

/// `PUT /Groups/{id}`: replaces the display name, externalId and the whole membership.
pub async fn replace_group(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    if_match: Option<&[i64]>,
    body: &Value,
    with_members: bool,
) -> Result<Group> {
    let doc = GroupDoc::from_request(body)?;
    let changes = [
        GroupChange::DisplayName(doc.display_name),
        GroupChange::ExternalId(doc.external_id),
        GroupChange::SetMembers(doc.members),
    ];
    apply(store, owner, base_url, id, if_match, &changes, with_members).await
}

/// `PATCH /Groups/{id}`: every operation applies, or none.
pub async fn patch_group(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    if_match: Option<&[i64]>,
    body: &Value,
    with_members: bool,
) -> Result<Group> {
    let request = PatchRequest::parse(body)?;
    let changes = group_changes(&request, id)?;
    apply(store, owner, base_url, id, if_match, &changes, with_members).await
}

async fn apply(
    store: &Store,
    owner: &TokenOwner,
    base_url: &str,
    id: &str,
    if_match: Option<&[i64]>,
    changes: &[GroupChange],
    with_members: bool,
) -> Result<Group> {
    let row = store
        .change_group(
            &owner.organisation_id,
            id,
            &owner.integration_id,
            if_match,
            changes,
            time::now_ms(),
        )
        .await?
        .ok_or(Error::NotFound)?;
    one(store, owner, base_url, row, with_members).await
}

/// `DELETE /Groups/{id}`: removes the group and its memberships (the users stay).
pub async fn delete_group(
    store: &Store,
    owner: &TokenOwner,
    id: &str,
    if_match: Option<&[i64]>,
) -> Result<()> {
    if store
        .delete_group(&owner.organisation_id, id, if_match)
        .await?
    {
        Ok(())
    } else {
        Err(Error::NotFound)
    }
}
