//! What the SCIM API does the same way to users and groups: create, read, list, replace,
//! patch and delete, as one trait that [`crate::provisioning::User`] and
//! [`crate::groups::Group`] implement with what differs (their documents, their related
//! resources), and the [`Scope`] every operation works in.

use std::future::Future;

use scim::filter::Resource;
use scim::user::Meta;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::integrations::TokenOwner;
use crate::provisioning::{Change, ListRequest};
use crate::store::{Deletion, ResourceRow, RowBody, Store, Stored, Target};

/// What a SCIM request works on: the store, the organisation and integration of its token,
/// and the base URL resources' locations start with.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub store: &'a Store,
    pub owner: &'a TokenOwner,
    pub base_url: &'a str,
}

impl Scope<'_> {
    /// The user or group `id` as a write by this scope's integration names it, on the
    /// condition `if_match`.
    pub(crate) fn target(&self, id: &str, if_match: Option<&[i64]>) -> Target {
        Target {
            organisation_id: self.owner.organisation_id.clone(),
            integration_id: self.owner.integration_id.clone(),
            id: id.to_owned(),
            if_match: if_match.map(<[i64]>::to_vec),
        }
    }

    /// The DELETE of `id` by this scope's integration: what the console keeps of it is the
    /// integration's setting (read as it is now by the caller).
    pub(crate) fn deletion(&self, id: &str, if_match: Option<&[i64]>) -> Deletion {
        Deletion {
            target: self.target(id, if_match),
            mode: self.owner.on_delete,
            at: crate::time::now_ms(),
        }
    }
}

/// A user or group as the SCIM API serves it. Reading, listing and deleting are the same
/// for both and written here once; creating and changing are each resource's own.
pub trait ScimResource: Sized + Send + Sync + 'static {
    /// What its stored row holds of its own.
    type Body: RowBody;

    /// Which attributes filters and sorting may name.
    const RESOURCE: Resource;
    /// "User" or "Group", as the activity log names it.
    const KIND: &'static str;
    /// The attribute listing the related resources (a user's groups, a group's members),
    /// loaded only when the answer shows it.
    const RELATED: &'static str;

    fn meta(&self) -> &Meta;

    /// The resource as one store job read or wrote it.
    fn from_stored(stored: Stored<ResourceRow<Self::Body>>, base_url: &str) -> Result<Self>;

    /// The resource as SCIM JSON.
    fn body(&self) -> Value;

    /// `POST`; `with_related` returns the related resources too.
    fn create(
        scope: Scope<'_>,
        body: &Value,
        with_related: bool,
    ) -> impl Future<Output = Result<Self>> + Send;

    /// `GET /{id}`.
    fn get(
        scope: Scope<'_>,
        id: &str,
        with_related: bool,
    ) -> impl Future<Output = Result<Self>> + Send {
        async move {
            let stored = scope
                .store
                .resource::<Self::Body>(
                    &scope.owner.organisation_id,
                    id,
                    Some(&scope.owner.integration_id),
                    with_related,
                )
                .await?
                .ok_or(Error::NotFound)?;
            Self::from_stored(stored, scope.base_url)
        }
    }

    /// `GET` with a filter, sort and page: that page and the number of all matches.
    fn list(
        scope: Scope<'_>,
        request: &ListRequest<'_>,
        with_related: bool,
    ) -> impl Future<Output = Result<(u64, Vec<Self>)>> + Send {
        async move {
            let query = request.query(scope.owner, Self::RESOURCE)?;
            let listed = scope
                .store
                .list::<Self::Body>(&scope.owner.organisation_id, query, with_related)
                .await?;
            let page = listed
                .page
                .into_iter()
                .map(|stored| Self::from_stored(stored, scope.base_url))
                .collect::<Result<_>>()?;
            Ok((listed.total, page))
        }
    }

    /// `PUT /{id}`: replaces every attribute.
    fn replace(
        scope: Scope<'_>,
        change: &Change<'_>,
        body: &Value,
    ) -> impl Future<Output = Result<Self>> + Send;

    /// `PATCH /{id}`: all operations apply, or none.
    fn patch(
        scope: Scope<'_>,
        change: &Change<'_>,
        body: &Value,
    ) -> impl Future<Output = Result<Self>> + Send;

    /// `DELETE /{id}`: gone for SCIM (RFC 7644 §3.6); the console keeps a record of it or
    /// erases it, by the integration's setting (`scope`'s owner, read as it is now). A
    /// group's members stay; a user leaves their groups.
    fn delete(
        scope: Scope<'_>,
        id: &str,
        if_match: Option<&[i64]>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            if scope
                .store
                .delete::<Self::Body>(scope.deletion(id, if_match))
                .await?
            {
                Ok(())
            } else {
                Err(Error::NotFound)
            }
        }
    }
}
