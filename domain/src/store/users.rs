//! Storage of SCIM users: the document, the indexed columns and values filters use, the
//! externalId each integration keeps, and the groups derived from membership.

use scim::user::{fold_case, IndexedValue, UserDoc};

use super::db::{stmt, Param, Query, Tx};
use super::filter_sql::{bind_all, ListSql, Table};
use super::history::{self, Origin, Subject};
use super::resources::{self, set_external_id, Deletion, ResourceRow, RowBody, Stored, Target};
use super::{Backend, ListQuery, Store, CHUNK};
use crate::error::{Error, Result};
use crate::history::Action;

/// A stored SCIM user, with the externalId of the integration that read it.
pub type UserRow = ResourceRow<UserBody>;

/// What a user's row holds of its own: its document as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserBody {
    pub attributes: String,
}

/// The columns of a user that indexes and uniqueness read, derived from its document.
#[derive(PartialEq)]
struct Columns {
    user_name: String,
    user_name_key: String,
    display_name: Option<String>,
    display_name_key: Option<String>,
    active: bool,
}

impl Columns {
    fn of(doc: &UserDoc) -> Self {
        Self {
            user_name: doc.user_name().to_owned(),
            user_name_key: doc.user_name_key(),
            display_name: doc.display_name().map(str::to_owned),
            display_name_key: doc.display_name().map(fold_case),
            active: doc.active(),
        }
    }

    /// The columns, by name, with their values.
    fn params(&self) -> [(&'static str, Param<'_>); 5] {
        [
            ("user_name", Param::from(self.user_name.as_str())),
            ("user_name_key", Param::from(self.user_name_key.as_str())),
            ("display_name", Param::from(self.display_name.as_deref())),
            (
                "display_name_key",
                Param::from(self.display_name_key.as_deref()),
            ),
            ("active", Param::from(self.active)),
        ]
    }
}

/// What is written of a user: its document and what storage derives from it.
struct Written {
    columns: Columns,
    external_id: Option<String>,
    attributes: String,
    values: Vec<IndexedValue>,
}

impl Written {
    fn of(doc: &UserDoc) -> Self {
        Self {
            columns: Columns::of(doc),
            external_id: doc.external_id().map(str::to_owned),
            attributes: doc.to_json(),
            values: doc.indexed_values(),
        }
    }

    /// Inserts the user `id` of an organisation, created by an integration at `at`.
    async fn insert(&self, ids: [&str; 3], at: i64, tx: &mut Tx) -> Result<()> {
        let [id, organisation_id, integration_id] = ids;
        let insert = stmt(
            "INSERT INTO scim_users (user_name, user_name_key, display_name, display_name_key, \
             active, attributes, id, organisation_id, integration_id, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10)",
        );
        let mut q = insert;
        for (_, value) in self.columns.params() {
            q = q.bind(value);
        }
        let q = q
            .bind(self.attributes.as_str())
            .bind(id)
            .bind(organisation_id)
            .bind(integration_id)
            .bind(at);
        self.taken(q.execute(tx).await)
    }

    /// Writes the user over one whose columns were `old`, setting only the indexed columns
    /// that changed: each one set rewrites its index entry, which dirties a page even when
    /// the value is the same.
    async fn update(
        &self,
        old: &Columns,
        organisation_id: &str,
        id: &str,
        at: i64,
        tx: &mut Tx,
    ) -> Result<()> {
        let mut sql = String::from(
            "UPDATE scim_users SET attributes = $1, version = version + 1, updated_at = $2",
        );
        let mut q_values = Vec::new();
        for ((column, value), (_, before)) in self.columns.params().into_iter().zip(old.params()) {
            if value != before {
                q_values.push(value);
                sql.push_str(&format!(", {column} = ${}", q_values.len() + 4));
            }
        }
        sql.push_str(" WHERE organisation_id = $3 AND id = $4");
        let mut q = stmt(sql)
            .bind(self.attributes.as_str())
            .bind(at)
            .bind(organisation_id)
            .bind(id);
        for value in q_values {
            q = q.bind(value);
        }
        self.taken(q.execute(tx).await)
    }

    /// A write's outcome: `Conflict` when a UNIQUE index refused the userName.
    fn taken(&self, written: Result<u64>) -> Result<()> {
        match written {
            Ok(_) => Ok(()),
            Err(e) if e.is_unique_violation() => Err(Error::Conflict {
                attribute: "userName",
                value: self.columns.user_name.clone(),
            }),
            Err(e) => Err(e),
        }
    }
}

impl RowBody for UserBody {
    const TABLE: Table = Table::Users;
    const COLUMN: &'static str = "attributes";

    fn from_column(attributes: String) -> Self {
        Self { attributes }
    }

    fn name(&self) -> Result<String> {
        Ok(name_of(&UserDoc::from_stored(&self.attributes)?).to_owned())
    }

    fn record(backend: Backend, row: UserRow, deletion: &Deletion) -> Result<Query<'static>> {
        let doc = UserDoc::from_stored(&row.body.attributes)?;
        let groups = backend.json_rows(
            &backend.json_row("g.id, g.display_name"),
            "FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id \
             WHERE m.user_id = u.id",
            "g.display_name_key, g.id",
        );
        Ok(deletion
            .record(
                format!(
                    "INSERT INTO deleted_users (id, organisation_id, integration_id, deleted_by, \
                     user_name, user_name_key, display_name, display_name_key, active, attributes, \
                     external_id, groups, search_key, created_at, updated_at, deleted_at) \
                     SELECT id, organisation_id, integration_id, $3, user_name, user_name_key, \
                     display_name, display_name_key, active, attributes, $4, {groups}, $6, \
                     created_at, updated_at, $5 FROM scim_users u WHERE organisation_id = $1 AND id = $2"
                ),
                row.external_id,
            )
            .bind(search_key(&doc)))
    }

    /// Each group the user leaves changes: its version and last modification move on.
    fn leaving(backend: Backend, deletion: &Deletion) -> Option<Query<'static>> {
        Some(
            stmt(format!(
                "UPDATE scim_groups SET version = version + 1, updated_at = {}(updated_at, $3) \
                 WHERE organisation_id = $1 AND id IN \
                 (SELECT group_id FROM scim_group_members WHERE user_id = $2)",
                backend.greatest()
            ))
            .bind(deletion.target.organisation_id.clone())
            .bind(deletion.target.id.clone())
            .bind(deletion.at),
        )
    }
}

/// The name a user goes by in the console: their displayName, else their userName.
pub(super) fn name_of(doc: &UserDoc) -> &str {
    doc.display_name().unwrap_or(doc.user_name())
}

/// What the console's search looks in for a deleted user: what it searches for a current
/// one (userName, displayName, emails, given and family name), case-folded, one a line.
fn search_key(doc: &UserDoc) -> String {
    let mut lines = vec![doc.user_name_key()];
    lines.extend(doc.display_name().map(fold_case));
    lines.extend(
        doc.indexed_values()
            .into_iter()
            .filter(|v| {
                ["emails", "name.givenName", "name.familyName"].contains(&v.attribute.as_str())
            })
            .filter_map(|v| v.value),
    );
    lines.join("\n")
}

impl Store {
    /// Inserts a user created by `integration_id`; `Conflict` when the userName is taken in
    /// the organisation.
    pub async fn insert_user(
        &self,
        organisation_id: &str,
        integration_id: &str,
        id: &str,
        doc: &UserDoc,
        at: i64,
    ) -> Result<()> {
        let written = Written::of(doc);
        let origin = Origin::of_request(organisation_id, integration_id, at);
        let name = name_of(doc).to_owned();
        let (organisation_id, integration_id, id) = (
            organisation_id.to_owned(),
            integration_id.to_owned(),
            id.to_owned(),
        );
        self.write(move |tx| {
            Box::pin(async move {
                written
                    .insert([&id, &organisation_id, &integration_id], at, tx)
                    .await?;
                insert_values(tx, &organisation_id, &id, &written.values).await?;
                set_external_id(
                    tx,
                    Table::Users,
                    &id,
                    &integration_id,
                    written.external_id.as_deref(),
                )
                .await?;
                if let Some(origin) = origin {
                    let subject = Subject::user(&id, &name);
                    history::record(tx, &origin, subject, Action::Created, &[]).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Reads the user `target` names and changes it with `change`, which gets the stored
    /// document and row and returns the new document and the time of the change, in one
    /// job: nothing can change the user in between. Returns the new document and the user as
    /// stored, with its groups when `with_groups`. `None` when the user does not exist;
    /// `PreconditionFailed` when its version is not one `target` allows; `Conflict` when the
    /// new userName is taken. The integration that created the user stays its source; an
    /// externalId change is the target's integration's.
    pub async fn update_user<F>(
        &self,
        target: Target,
        with_groups: bool,
        change: F,
    ) -> Result<Option<(UserDoc, Stored<UserRow>)>>
    where
        F: FnOnce(&UserDoc, &UserRow) -> Result<(UserDoc, i64)> + Send + 'static,
    {
        let backend = self.backend();
        let origin = Origin::of_request(&target.organisation_id, &target.integration_id, 0);
        self.write(move |tx| {
            Box::pin(async move {
                let Some(row) = resources::read_target::<UserBody>(backend, tx, &target).await?
                else {
                    return Ok(None);
                };
                let Target {
                    organisation_id,
                    integration_id,
                    id,
                    ..
                } = &target;
                let current =
                    UserDoc::from_stored(&row.body.attributes)?.with_external_id(row.external_id.clone());
                let (doc, at) = change(&current, &row)?;
                let written = Written::of(&doc);
                written
                    .update(&Columns::of(&current), organisation_id, id, at, tx)
                    .await?;
                // Only the indexed values that changed are rewritten: a change touches one
                // or two of them (or none: active, a name), and each rewritten one dirties
                // index pages.
                let stored = stored_values(tx, id).await?;
                let (gone, added) = value_changes(&stored, &sorted_values(&written.values));
                for v in gone {
                    stmt("DELETE FROM scim_user_values WHERE user_id = $1 AND attribute = $2 AND element = $3")
                        .bind(id)
                        .bind(&v.attribute)
                        .bind(v.element)
                        .execute(tx)
                        .await?;
                }
                insert_values(tx, organisation_id, id, &added).await?;
                set_external_id(
                    tx,
                    Table::Users,
                    id,
                    integration_id,
                    written.external_id.as_deref(),
                )
                .await?;
                if let Some(origin) = origin {
                    let subject = Subject::user(id, name_of(&doc));
                    let changes = scim::changes::user_changes(&current, &doc);
                    history::record(tx, &origin.at(at), subject, Action::Changed, &changes)
                        .await?;
                }
                let related = if with_groups {
                    resources::related(tx, Table::Users, organisation_id, std::slice::from_ref(id))
                        .await?
                        .pop()
                } else {
                    None
                };
                Ok(Some((
                    doc,
                    Stored {
                        row: UserRow {
                            body: UserBody {
                                attributes: written.attributes,
                            },
                            version: row.version + 1,
                            updated_at: at,
                            external_id: written.external_id,
                            ..row
                        },
                        related,
                    },
                )))
            })
        })
        .await
    }

    /// SQLite's query plans for the two statements a user list runs (count, then page), so
    /// a benchmark can show which indexes they use.
    pub async fn explain_list_users(
        &self,
        organisation_id: &str,
        query: ListQuery,
    ) -> Result<[Vec<String>; 2]> {
        let backend = self.backend();
        let sql = ListSql::new(backend, Table::Users, "id", organisation_id, &query);
        self.read(move |tx| {
            Box::pin(async move {
                let (explain, column) = match backend {
                    Backend::Sqlite => ("EXPLAIN QUERY PLAN", 3),
                    Backend::Postgres => ("EXPLAIN", 0),
                };
                let mut plans = [Vec::new(), Vec::new()];
                for (plan, (text, binds)) in plans
                    .iter_mut()
                    .zip([(&sql.count, &sql.binds), (&sql.page, &sql.page_binds)])
                {
                    let rows = bind_all(stmt(format!("{explain} {text}")), binds)
                        .fetch_all(tx)
                        .await?;
                    *plan = rows
                        .into_iter()
                        .map(|mut r| r.take::<String>(column))
                        .collect();
                }
                Ok(plans)
            })
        })
        .await
    }
}

/// A user's stored filterable values, in [`sorted_values`] order.
async fn stored_values(tx: &mut Tx, user_id: &str) -> Result<Vec<IndexedValue>> {
    let rows = stmt(
        "SELECT attribute, element, value_key, type_key, display_key, is_primary \
         FROM scim_user_values WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_all(tx)
    .await?;
    let values = rows
        .into_iter()
        .map(|mut r| IndexedValue {
            attribute: r.take(0),
            element: r.take(1),
            value: r.take(2),
            kind: r.take(3),
            display: r.take(4),
            primary: r.take(5),
        })
        .collect::<Vec<_>>();
    Ok(sorted_values(&values))
}

/// Every field of an indexed value, in the order [`sorted_values`] sorts by.
fn value_order(v: &IndexedValue) -> impl Ord + '_ {
    (
        v.attribute.as_str(),
        v.element,
        v.value.as_deref(),
        v.kind.as_deref(),
        v.display.as_deref(),
        v.primary,
    )
}

/// `values` in one order, to compare them whatever order they were written in.
fn sorted_values(values: &[IndexedValue]) -> Vec<IndexedValue> {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| value_order(a).cmp(&value_order(b)));
    sorted
}

/// The values in `stored` but not in `new`, and those in `new` but not in `stored` (both
/// sorted by [`sorted_values`]).
fn value_changes(
    stored: &[IndexedValue],
    new: &[IndexedValue],
) -> (Vec<IndexedValue>, Vec<IndexedValue>) {
    let (mut gone, mut added) = (Vec::new(), Vec::new());
    let (mut old, mut new) = (stored.iter().peekable(), new.iter().peekable());
    loop {
        match (old.peek(), new.peek()) {
            (Some(o), Some(n)) => match value_order(o).cmp(&value_order(n)) {
                std::cmp::Ordering::Equal => {
                    old.next();
                    new.next();
                }
                std::cmp::Ordering::Less => gone.extend(old.next().cloned()),
                std::cmp::Ordering::Greater => added.extend(new.next().cloned()),
            },
            (Some(_), None) => gone.extend(old.next().cloned()),
            (None, Some(_)) => added.extend(new.next().cloned()),
            (None, None) => return (gone, added),
        }
    }
}

/// Writes filterable values of a user (see `scim_user_values` in the schema).
async fn insert_values(
    tx: &mut Tx,
    organisation_id: &str,
    user_id: &str,
    values: &[IndexedValue],
) -> Result<()> {
    for chunk in values.chunks(CHUNK / 8) {
        let rows = (0..chunk.len())
            .map(|i| {
                let b = 3 + i * 6;
                format!(
                    "($1, $2, ${b}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO scim_user_values (organisation_id, user_id, attribute, element, value_key, \
             type_key, display_key, is_primary) VALUES {rows}"
        );
        let mut q = stmt(sql).bind(organisation_id).bind(user_id);
        for v in chunk {
            q = q
                .bind(&v.attribute)
                .bind(v.element)
                .bind(&v.value)
                .bind(&v.kind)
                .bind(&v.display)
                .bind(v.primary);
        }
        q.execute(tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_values_are_rewritten() {
        let value = |attribute: &str, element: i64, value: &str| IndexedValue {
            attribute: attribute.into(),
            element,
            value: Some(value.into()),
            kind: None,
            display: None,
            primary: false,
        };
        let stored = sorted_values(&[
            value("title", 0, "cto"),
            value("emails", 0, "a@x"),
            value("emails", 1, "b@x"),
        ]);
        let new = sorted_values(&[
            value("emails", 1, "b@x"),
            value("emails", 0, "a@x"),
            value("title", 0, "ceo"),
            value("nickname", 0, "j"),
        ]);
        let (gone, added) = value_changes(&stored, &new);
        assert_eq!(gone, [value("title", 0, "cto")]);
        assert_eq!(added, [value("nickname", 0, "j"), value("title", 0, "ceo")]);
        assert_eq!(value_changes(&new, &new), (vec![], vec![]));
    }
}
