//! SCIM provisioning of groups. Membership changes go to storage as changes, never as a
//! rewritten member list, so large groups cost what the change costs. Each operation is one
//! store job, which also reads back what the answer shows.

use scim::filter::Resource;
use scim::group::{group_changes, group_resource, GroupChange, GroupDoc};
use scim::patch::PatchRequest;
use scim::user::Meta;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::provisioning::{meta, Change};
use crate::scim_resource::{ScimResource, Scope};
use crate::store::{GroupBody, GroupRow, NewGroup, Stored};
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

    fn of(stored: Stored<GroupRow>, base_url: &str) -> Self {
        let Stored { row, related } = stored;
        Self {
            display_name: row.body.display_name,
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

impl ScimResource for Group {
    const RESOURCE: Resource = Resource::Group;
    const KIND: &'static str = "Group";
    const RELATED: &'static str = "members";

    type Body = GroupBody;

    fn meta(&self) -> &Meta {
        &self.meta
    }

    fn from_stored(stored: Stored<GroupRow>, base_url: &str) -> Result<Self> {
        Ok(Group::of(stored, base_url))
    }

    fn body(&self) -> Value {
        self.resource()
    }

    /// `with_members` returns the members (with their display names).
    async fn create(s: Scope<'_>, body: &Value, with_members: bool) -> Result<Self> {
        let doc = GroupDoc::from_request(body)?;
        let stored = s
            .store
            .insert_group(
                NewGroup {
                    id: uuid::Uuid::new_v4().to_string(),
                    organisation_id: s.owner.organisation_id.clone(),
                    integration_id: s.owner.integration_id.clone(),
                    display_name: doc.display_name,
                    external_id: doc.external_id,
                    members: doc.members,
                    at: time::now_ms(),
                },
                with_members,
            )
            .await?;
        Ok(Group::of(stored, s.base_url))
    }

    /// Replaces the display name, externalId and the whole membership.
    async fn replace(s: Scope<'_>, change: &Change<'_>, body: &Value) -> Result<Self> {
        let doc = GroupDoc::from_request(body)?;
        let changes = vec![
            GroupChange::DisplayName(doc.display_name),
            GroupChange::ExternalId(doc.external_id),
            GroupChange::SetMembers(doc.members),
        ];
        apply(s, change, changes).await
    }

    async fn patch(s: Scope<'_>, change: &Change<'_>, body: &Value) -> Result<Self> {
        let request = PatchRequest::parse(body)?;
        let changes = group_changes(&request, change.id)?;
        apply(s, change, changes).await
    }
}

/// Applies a group's changes (a PATCH, or a PUT's replacement) in one store job.
async fn apply(s: Scope<'_>, change: &Change<'_>, changes: Vec<GroupChange>) -> Result<Group> {
    let stored = s
        .store
        .change_group(
            s.target(change.id, change.if_match),
            changes,
            time::now_ms(),
            change.with_related,
        )
        .await?
        .ok_or(Error::NotFound)?;
    Ok(Group::of(stored, s.base_url))
}
