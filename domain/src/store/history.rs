//! Storage of the change history (see [`crate::history`]): rows written by the write jobs of
//! users and groups, in their own transaction, and read newest first.

use scim::changes::AttributeChange;

use super::db::{stmt, Tx};
use super::filter_sql::Table;
use super::{placeholders, Store, CHUNK};
use crate::deadline;
use crate::error::Result;
use crate::history::{Action, HistoryEntry};

/// Who wrote, and when, as the history names it.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    organisation_id: String,
    integration_id: String,
    request_id: Option<String>,
    at: i64,
}

impl Origin {
    /// The origin of a write the current request makes, if its writes are kept (see
    /// [`deadline::keep_history`]). Read before the job starts: jobs run outside the
    /// request's task.
    pub(super) fn of_request(organisation_id: &str, integration_id: &str, at: i64) -> Option<Self> {
        deadline::history().map(|h| Self {
            organisation_id: organisation_id.to_owned(),
            integration_id: integration_id.to_owned(),
            request_id: h.request_id,
            at,
        })
    }

    /// The same writer, at another time (a user's write takes its time inside the job).
    pub(super) fn at(self, at: i64) -> Self {
        Self { at, ..self }
    }
}

/// The user or group a history entry is about.
#[derive(Debug, Clone, Copy)]
pub(super) struct Subject<'a> {
    pub table: Table,
    pub id: &'a str,
    pub name: &'a str,
}

impl<'a> Subject<'a> {
    pub(super) fn user(id: &'a str, name: &'a str) -> Self {
        Self {
            table: Table::Users,
            id,
            name,
        }
    }

    pub(super) fn group(id: &'a str, name: &'a str) -> Self {
        Self {
            table: Table::Groups,
            id,
            name,
        }
    }
}

fn resource_type(table: Table) -> &'static str {
    match table {
        Table::Users => "User",
        Table::Groups => "Group",
    }
}

const COLUMNS: &str = "organisation_id, at, integration_id, request_id, resource_type, \
                       resource_id, resource_name, action, path, old_value, new_value";

/// Records that `origin` did `action` to `subject`: with `changes` for `Action::Changed`
/// (one row each; nothing when there are none), else one row.
pub(super) async fn record(
    tx: &mut Tx,
    origin: &Origin,
    subject: Subject<'_>,
    action: Action,
    changes: &[AttributeChange],
) -> Result<()> {
    let rows: Vec<(Option<&str>, Option<&str>, Option<&str>)> = if action == Action::Changed {
        changes
            .iter()
            .map(|c| (Some(c.path.as_str()), c.old.as_deref(), c.new.as_deref()))
            .collect()
    } else {
        vec![(None, None, None)]
    };
    // Eleven parameters a row, well under SQLite's limit per statement.
    for chunk in rows.chunks(CHUNK / 11) {
        let values = (0..chunk.len())
            .map(|i| format!("({})", placeholders(1 + i * 11, 11)))
            .collect::<Vec<_>>()
            .join(", ");
        let mut q = stmt(format!(
            "INSERT INTO resource_changes ({COLUMNS}) VALUES {values}"
        ));
        for (path, old, new) in chunk {
            q = q
                .bind(origin.organisation_id.as_str())
                .bind(origin.at)
                .bind(origin.integration_id.as_str())
                .bind(&origin.request_id)
                .bind(resource_type(subject.table))
                .bind(subject.id)
                .bind(subject.name)
                .bind(action.as_str())
                .bind(*path)
                .bind(*old)
                .bind(*new);
        }
        q.execute(tx).await?;
    }
    Ok(())
}

/// Which members a membership change concerns.
pub(super) enum Members<'a> {
    /// These users, as far as they are not members yet (run before they are added).
    Joining(&'a [String]),
    /// These users, as far as they are members (run before they are removed).
    Leaving(&'a [String]),
    /// Every member (run before all are removed).
    All,
}

/// Records the members `origin` adds to or removes from the group `group`, one row each,
/// read from the users' rows in the statement itself: only the memberships that change.
pub(super) async fn record_members(
    tx: &mut Tx,
    origin: &Origin,
    group: Subject<'_>,
    members: Members<'_>,
) -> Result<()> {
    let columns = format!("{COLUMNS}, member_id, member_name");
    let head = "$1, $2, $3, $4, 'Group', $5, $6";
    let (ids, action, from) = match members {
        Members::Joining(ids) => (
            Some(ids),
            Action::MemberAdded,
            "FROM scim_users u WHERE u.organisation_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM scim_group_members m WHERE m.group_id = $5 AND m.user_id = u.id)",
        ),
        Members::Leaving(ids) => (
            Some(ids),
            Action::MemberRemoved,
            "FROM scim_group_members m JOIN scim_users u ON u.id = m.user_id WHERE m.group_id = $5",
        ),
        Members::All => (
            None,
            Action::MemberRemoved,
            "FROM scim_group_members m JOIN scim_users u ON u.id = m.user_id WHERE m.group_id = $5",
        ),
    };
    let select = format!(
        "INSERT INTO resource_changes ({columns}) SELECT {head}, '{}', NULL, NULL, NULL, \
         u.id, COALESCE(u.display_name, u.user_name) {from}",
        action.as_str()
    );
    let bind = |sql: String| {
        stmt(sql)
            .bind(origin.organisation_id.clone())
            .bind(origin.at)
            .bind(origin.integration_id.clone())
            .bind(origin.request_id.clone())
            .bind(group.id.to_owned())
            .bind(group.name.to_owned())
    };
    match ids {
        None => {
            bind(select).execute(tx).await?;
        }
        Some(ids) => {
            for chunk in ids.chunks(CHUNK) {
                let mut q = bind(format!(
                    "{select} AND u.id IN ({})",
                    placeholders(7, chunk.len())
                ));
                for id in chunk {
                    q = q.bind(id);
                }
                q.execute(tx).await?;
            }
        }
    }
    Ok(())
}

/// Erases every entry about the user or group `id`, and naming it as a member.
pub(super) async fn erase(tx: &mut Tx, organisation_id: &str, id: &str) -> Result<()> {
    stmt(
        "DELETE FROM resource_changes WHERE organisation_id = $1 \
         AND (resource_id = $2 OR member_id = $2)",
    )
    .bind(organisation_id)
    .bind(id)
    .execute(tx)
    .await?;
    Ok(())
}

impl Store {
    /// The newest `limit` entries about the user or group `id`, newest first; a user's
    /// include the groups they joined and left.
    pub(crate) async fn history(
        &self,
        organisation_id: &str,
        table: Table,
        id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>> {
        let (organisation_id, id) = (organisation_id.to_owned(), id.to_owned());
        self.read(move |tx| {
            Box::pin(async move {
                // Two index walks, one per column, each stopping at `limit`: an OR of the
                // two would make the database read every entry to sort them.
                let mut wheres = vec!["c.resource_id = $2"];
                if table == Table::Users {
                    wheres.push("c.member_id = $2");
                }
                let mut entries = Vec::new();
                for condition in wheres {
                    let rows = stmt(format!(
                        "SELECT c.seq, c.at, i.kind, c.request_id, c.action, c.resource_type, \
                         c.resource_id, c.resource_name, c.path, c.old_value, c.new_value, \
                         c.member_id, c.member_name FROM resource_changes c \
                         LEFT JOIN directory_integrations i ON i.id = c.integration_id \
                         WHERE c.organisation_id = $1 AND {condition} ORDER BY c.seq DESC LIMIT $3"
                    ))
                    .bind(&organisation_id)
                    .bind(&id)
                    .bind(limit)
                    .fetch_all(tx)
                    .await?;
                    for mut r in rows {
                        let seq: i64 = r.take(0);
                        let at = r.take(1);
                        let by = r.take(2);
                        let request_id = r.take(3);
                        let action: String = r.take(4);
                        let Some(action) = Action::parse(&action) else {
                            continue;
                        };
                        let resource_type: String = r.take(5);
                        let member_id: Option<String> = r.take(11);
                        let member_name: Option<String> = r.take(12);
                        entries.push((
                            seq,
                            HistoryEntry {
                                at,
                                by,
                                request_id,
                                action,
                                on_group: resource_type == "Group",
                                resource_id: r.take(6),
                                resource_name: r.take(7),
                                path: r.take(8),
                                old: r.take(9),
                                new: r.take(10),
                                member: member_id.zip(member_name),
                            },
                        ));
                    }
                }
                entries.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
                entries.truncate(usize::try_from(limit).unwrap_or(0));
                Ok(entries.into_iter().map(|(_, e)| e).collect())
            })
        })
        .await
    }
}
