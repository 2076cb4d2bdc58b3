//! Storage of SCIM groups. Members are rows of their own, changed row by row, so a change to
//! a large group costs what the change costs.

use scim::changes::{shown, AttributeChange};
use scim::group::GroupChange;
use scim::user::fold_case;

use super::db::{stmt, Query, Tx};
use super::filter_sql::{version_guard, Table};
use super::history::{self, Members, Origin, Subject};
use super::resources::{
    self, missing_or_changed, set_external_id, Deletion, Reading, ResourceRow, RowBody, Stored,
    Target,
};
use super::{placeholders, Backend, Store, CHUNK};
use crate::error::{Error, Result};
use crate::history::Action;

/// A stored SCIM group (members are rows of their own), with the externalId of the
/// integration that read it.
pub type GroupRow = ResourceRow<GroupBody>;

/// What a group's row holds of its own: its displayName.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupBody {
    pub display_name: String,
}

/// A group to create.
#[derive(Debug, Clone)]
pub struct NewGroup {
    pub id: String,
    pub organisation_id: String,
    /// The integration creating it, which keeps its externalId.
    pub integration_id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: Vec<String>,
    pub at: i64,
}

impl RowBody for GroupBody {
    const TABLE: Table = Table::Groups;
    const COLUMN: &'static str = "display_name";

    fn from_column(display_name: String) -> Self {
        Self { display_name }
    }

    fn name(&self) -> Result<String> {
        Ok(self.display_name.clone())
    }

    fn record(backend: Backend, row: GroupRow, deletion: &Deletion) -> Result<Query<'static>> {
        let members = backend.json_rows(
            &backend.json_row("u.id, u.user_name, u.display_name, CAST(u.active AS INTEGER)"),
            "FROM scim_group_members m JOIN scim_users u ON u.id = m.user_id \
             WHERE m.group_id = g.id",
            "u.user_name_key, u.id",
        );
        Ok(deletion.record(
            format!(
                "INSERT INTO deleted_groups (id, organisation_id, integration_id, deleted_by, \
                 display_name, display_name_key, external_id, members, member_count, created_at, \
                 updated_at, deleted_at) \
                 SELECT id, organisation_id, integration_id, $3, display_name, display_name_key, $4, \
                 {members}, (SELECT COUNT(*) FROM scim_group_members m WHERE m.group_id = g.id), \
                 created_at, updated_at, $5 FROM scim_groups g WHERE organisation_id = $1 AND id = $2"
            ),
            row.external_id,
        ))
    }

    /// A group's members keep no trace of it but the derived `groups`: nothing to record.
    fn leaving(_: Backend, _: &Deletion) -> Option<Query<'static>> {
        None
    }
}

impl Store {
    /// Inserts a group with its members, and reads it back (members when `with_members`),
    /// in one job. A member id that is not a user of the organisation is an
    /// `invalidValue` error, and nothing is created.
    pub async fn insert_group(
        &self,
        group: NewGroup,
        with_members: bool,
    ) -> Result<Stored<GroupRow>> {
        let origin = Origin::of_request(&group.organisation_id, &group.integration_id, group.at);
        self.write(move |tx| {
            Box::pin(async move {
                stmt(
                    "INSERT INTO scim_groups (id, organisation_id, integration_id, display_name, display_name_key, \
                     version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
                )
                .bind(&group.id)
                .bind(&group.organisation_id)
                .bind(&group.integration_id)
                .bind(&group.display_name)
                .bind(fold_case(&group.display_name).as_str())
                .bind(group.at)
                .execute(tx)
                .await?;
                set_external_id(
                    tx,
                    Table::Groups,
                    &group.id,
                    &group.integration_id,
                    group.external_id.as_deref(),
                )
                .await?;
                let membership = Membership {
                    organisation_id: &group.organisation_id,
                    group: Subject::group(&group.id, &group.display_name),
                    origin: origin.as_ref(),
                };
                if let Some(origin) = &origin {
                    history::record(tx, origin, membership.group, Action::Created, &[]).await?;
                }
                membership.add(tx, &group.members).await?;
                let related = if with_members {
                    resources::related(
                        tx,
                        Table::Groups,
                        &group.organisation_id,
                        std::slice::from_ref(&group.id),
                    )
                        .await?
                        .pop()
                } else {
                    None
                };
                Ok(Stored {
                    row: GroupRow {
                        id: group.id,
                        body: GroupBody {
                            display_name: group.display_name,
                        },
                        external_id: group.external_id,
                        version: 1,
                        created_at: group.at,
                        updated_at: group.at,
                    },
                    related,
                })
            })
        })
        .await
    }

    /// Applies a group's changes (a PATCH, or a PUT's replacement) at `at` in one job: all
    /// of them or none, and reads the group back (members when `with_members`). An
    /// externalId change is the target's integration's. `None` when the group does not
    /// exist; `PreconditionFailed` when its version is not one `target` allows.
    pub async fn change_group(
        &self,
        target: Target,
        changes: Vec<GroupChange>,
        at: i64,
        with_members: bool,
    ) -> Result<Option<Stored<GroupRow>>> {
        let backend = self.backend();
        let origin = Origin::of_request(&target.organisation_id, &target.integration_id, at);
        self.write(move |tx| {
            Box::pin(async move {
                let Target {
                    organisation_id,
                    integration_id,
                    id,
                    ..
                } = &target;
                let display_name = changes.iter().rev().find_map(|c| match c {
                    GroupChange::DisplayName(n) => Some(n.as_str()),
                    _ => None,
                });
                // What the history compares with; locked on PostgreSQL until the job ends.
                let before = match origin {
                    Some(_) => resources::read_target::<GroupBody>(backend, tx, &target).await?,
                    None => None,
                };
                // The update comes first: it checks the version and, on PostgreSQL, locks
                // the group's row until the job ends.
                if !bump_group(backend, tx, &target, display_name, at).await? {
                    return missing_or_changed(tx, Table::Groups, organisation_id, id)
                        .await
                        .map(|()| None);
                }
                let name = display_name
                    .map(str::to_owned)
                    .or_else(|| before.as_ref().map(|b| b.body.display_name.clone()))
                    .unwrap_or_default();
                let membership = Membership {
                    organisation_id,
                    group: Subject::group(id, &name),
                    origin: origin.as_ref(),
                };
                if let (Some(origin), Some(before)) = (&origin, before) {
                    let attributes = attribute_changes(before, &changes);
                    history::record(tx, origin, membership.group, Action::Changed, &attributes)
                        .await?;
                }
                for change in &changes {
                    match change {
                        GroupChange::AddMembers(ids) => membership.add(tx, ids).await?,
                        GroupChange::RemoveMembers(ids) => membership.remove(tx, ids).await?,
                        GroupChange::RemoveAllMembers => membership.remove_all(tx).await?,
                        GroupChange::SetMembers(ids) => membership.set(tx, ids).await?,
                        GroupChange::ExternalId(e) => {
                            set_external_id(tx, Table::Groups, id, integration_id, e.as_deref())
                                .await?
                        }
                        GroupChange::DisplayName(_) => {}
                    }
                }
                let reading = Reading {
                    integration_id: Some(integration_id),
                    lock: false,
                    with_related: with_members,
                };
                resources::read(backend, tx, organisation_id, id, reading).await
            })
        })
        .await
    }

    /// Members per group, for the groups of one console page.
    pub async fn member_counts(
        &self,
        organisation_id: &str,
        group_ids: Vec<String>,
    ) -> Result<Vec<(String, i64)>> {
        let organisation_id = organisation_id.to_owned();
        self.read(move |tx| {
            Box::pin(async move {
                let mut out = Vec::new();
                for chunk in group_ids.chunks(CHUNK) {
                    let sql = format!(
                        "SELECT group_id, COUNT(*) FROM scim_group_members \
                         WHERE organisation_id = $1 AND group_id IN ({}) GROUP BY group_id",
                        placeholders(2, chunk.len())
                    );
                    let mut q = stmt(sql).bind(&organisation_id);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    for mut r in q.fetch_all(tx).await? {
                        out.push((r.take(0), r.take(1)));
                    }
                }
                Ok(out)
            })
        })
        .await
    }

    /// One page of a group's members by userName for the console: (user id, userName,
    /// displayName, active), and how many members it has.
    pub async fn member_page(
        &self,
        organisation_id: &str,
        group_id: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<(String, String, Option<String>, bool)>)> {
        let (organisation_id, group_id) = (organisation_id.to_owned(), group_id.to_owned());
        self.read(move |tx| {
            Box::pin(async move {
                let total: i64 = stmt(
                    "SELECT COUNT(*) FROM scim_group_members WHERE organisation_id = $1 AND group_id = $2",
                )
                .bind(&organisation_id)
                .bind(&group_id)
                .fetch_scalar(tx)
                .await?;
                let rows = stmt(
                    "SELECT u.id, u.user_name, u.display_name, CAST(CASE WHEN u.active THEN 1 ELSE 0 END AS BIGINT) \
                     FROM scim_group_members m JOIN scim_users u ON u.id = m.user_id \
                     WHERE m.organisation_id = $1 AND m.group_id = $2 \
                     ORDER BY u.user_name_key LIMIT $3 OFFSET $4",
                )
                .bind(&organisation_id)
                .bind(&group_id)
                .bind(limit)
                .bind(offset)
                .fetch_all(tx)
                .await?;
                Ok((
                    total,
                    rows.into_iter()
                        .map(|mut r| (r.take(0), r.take(1), r.take(2), r.take::<i64>(3) != 0))
                        .collect(),
                ))
            })
        })
        .await
    }
}

/// Moves the group `target` names to its next version, last changed at `at`, with
/// `display_name` when it changes; false when the group is not there at a version `target`
/// allows. Locks its row until the job ends.
async fn bump_group(
    b: Backend,
    tx: &mut Tx,
    target: &Target,
    display_name: Option<&str>,
    at: i64,
) -> Result<bool> {
    let mut sql = format!(
        "UPDATE scim_groups SET version = version + 1, updated_at = {}(updated_at, $3), \
         display_name = COALESCE($4, display_name), display_name_key = COALESCE($5, display_name_key) \
         WHERE organisation_id = $1 AND id = $2",
        b.greatest()
    );
    let (guard, versions) = version_guard(target.if_match.as_deref(), 6);
    sql.push_str(&guard);
    let key = display_name.map(fold_case);
    let mut q = stmt(sql)
        .bind(target.organisation_id.as_str())
        .bind(target.id.as_str())
        .bind(at)
        .bind(display_name)
        .bind(key);
    for v in versions {
        q = q.bind(v);
    }
    Ok(q.execute(tx).await? == 1)
}

/// The attributes of a group (not its members) that `changes` change, from `before`.
fn attribute_changes(before: GroupRow, changes: &[GroupChange]) -> Vec<AttributeChange> {
    let mut out = Vec::new();
    let mut last = |path: &str, old: Option<String>, new: Option<Option<&String>>| {
        if let Some(new) = new.filter(|new| *new != old.as_ref()) {
            out.push(AttributeChange {
                path: path.to_owned(),
                old: old.map(shown),
                new: new.cloned().map(shown),
            });
        }
    };
    last(
        "displayName",
        Some(before.body.display_name),
        changes.iter().rev().find_map(|c| match c {
            GroupChange::DisplayName(n) => Some(Some(n)),
            _ => None,
        }),
    );
    last(
        "externalId",
        before.external_id,
        changes.iter().rev().find_map(|c| match c {
            GroupChange::ExternalId(e) => Some(e.as_ref()),
            _ => None,
        }),
    );
    out
}

/// The membership of one group as a write job changes it, each change recorded in the
/// history when `origin` says it is kept.
struct Membership<'a> {
    organisation_id: &'a str,
    group: Subject<'a>,
    origin: Option<&'a Origin>,
}

impl Membership<'_> {
    /// Adds members, refusing ids that are not users of the organisation.
    async fn add(&self, tx: &mut Tx, ids: &[String]) -> Result<()> {
        let (organisation_id, group_id) = (self.organisation_id, self.group.id);
        for chunk in ids.chunks(CHUNK) {
            let sql = format!(
                "SELECT id FROM scim_users WHERE organisation_id = $1 AND id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = stmt(sql).bind(organisation_id);
            for id in chunk {
                q = q.bind(id);
            }
            let known: Vec<String> = q.fetch_all_scalar(tx).await?;
            if known.len() < chunk.len() {
                let known: std::collections::HashSet<&str> =
                    known.iter().map(String::as_str).collect();
                let missing = chunk
                    .iter()
                    .find(|id| !known.contains(id.as_str()))
                    .cloned()
                    .unwrap_or_default();
                return Err(Error::Scim(scim::ScimError::invalid_value(format!(
                    "member {missing:?} is not a user of this organisation"
                ))));
            }
            if let Some(origin) = self.origin {
                history::record_members(tx, origin, self.group, Members::Joining(chunk)).await?;
            }
            let values = (0..chunk.len())
                .map(|i| format!("($1, $2, ${})", i + 3))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO scim_group_members (organisation_id, group_id, user_id) VALUES {values} \
                 ON CONFLICT (group_id, user_id) DO NOTHING"
            );
            let mut q = stmt(sql).bind(organisation_id).bind(group_id);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(tx).await?;
        }
        Ok(())
    }

    async fn remove(&self, tx: &mut Tx, ids: &[String]) -> Result<()> {
        for chunk in ids.chunks(CHUNK) {
            if let Some(origin) = self.origin {
                history::record_members(tx, origin, self.group, Members::Leaving(chunk)).await?;
            }
            let sql = format!(
                "DELETE FROM scim_group_members WHERE group_id = $1 AND user_id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut q = stmt(sql).bind(self.group.id);
            for id in chunk {
                q = q.bind(id);
            }
            q.execute(tx).await?;
        }
        Ok(())
    }

    async fn remove_all(&self, tx: &mut Tx) -> Result<()> {
        if let Some(origin) = self.origin {
            history::record_members(tx, origin, self.group, Members::All).await?;
        }
        stmt("DELETE FROM scim_group_members WHERE group_id = $1")
            .bind(self.group.id)
            .execute(tx)
            .await?;
        Ok(())
    }

    /// Makes `ids` the whole membership, touching only the memberships that change: the
    /// history then says who left and who joined, not everyone both.
    async fn set(&self, tx: &mut Tx, ids: &[String]) -> Result<()> {
        let current: Vec<String> =
            stmt("SELECT user_id FROM scim_group_members WHERE group_id = $1")
                .bind(self.group.id)
                .fetch_all_scalar(tx)
                .await?;
        let kept: std::collections::HashSet<&str> = ids.iter().map(String::as_str).collect();
        let leaving: Vec<String> = current
            .into_iter()
            .filter(|id| !kept.contains(id.as_str()))
            .collect();
        self.remove(tx, &leaving).await?;
        self.add(tx, ids).await
    }
}
