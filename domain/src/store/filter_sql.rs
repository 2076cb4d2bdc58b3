//! SCIM filters, sorting and paging compiled to parameterised SQL: the statements of one
//! list request (a count of all matches and the page), on either backend. Nothing from the
//! filter reaches the SQL text but the shape of the condition: every value is a parameter.

use scim::filter::{Attr, Condition, ElementCondition, Field, Op, Operand};
use scim::list::{Sort, SortKey};

use super::db::{stmt, Query, Row, Tx};
use super::{Backend, ListQuery};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Users,
    Groups,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Users => "scim_users",
            Table::Groups => "scim_groups",
        }
    }

    /// The column of `scim_counts` that counts this table's rows.
    fn counted_as(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Groups => "groups",
        }
    }

    pub(crate) fn external_ids(self) -> &'static str {
        match self {
            Table::Users => "scim_user_external_ids",
            Table::Groups => "scim_group_external_ids",
        }
    }

    /// The externalId the integration bound at `$param` keeps for the row.
    fn external_id_expr(self, param: usize) -> String {
        format!(
            "(SELECT x.external_id FROM {} x WHERE x.resource_id = {}.id AND x.integration_id = ${param})",
            self.external_ids(),
            self.name()
        )
    }

    /// The same, as a result column.
    pub(crate) fn external_id_column(self, param: usize) -> String {
        format!("{} AS external_id", self.external_id_expr(param))
    }
}

#[derive(Clone)]
pub(crate) enum Bind {
    Str(String),
    Int(i64),
    Bool(bool),
}

/// Everything in the organisation `$1`, from the kept counts (`$2` unused but bound).
pub(crate) fn count_sql(table: Table) -> String {
    format!(
        "SELECT COALESCE((SELECT {} FROM scim_counts WHERE organisation_id = $1), 0) WHERE $2 IS NOT NULL",
        table.counted_as()
    )
}

/// The statements of one list request: a count of all matches and the page.
pub(crate) struct ListSql {
    pub(crate) count: String,
    pub(crate) binds: Vec<Bind>,
    pub(crate) page: String,
    pub(crate) page_binds: Vec<Bind>,
}

impl ListSql {
    pub(crate) fn new(
        b: Backend,
        table: Table,
        columns: &str,
        organisation_id: &str,
        query: &ListQuery,
    ) -> Self {
        let name = table.name();
        // $1 is the organisation, $2 the integration whose externalIds are read.
        let mut binds = vec![
            Bind::Str(organisation_id.to_owned()),
            Bind::Str(query.integration_id.clone().unwrap_or_default()),
        ];
        // When the filter looks a value up in scim_user_values, that index must drive the
        // query; `+` keeps the planner from scanning the organisation's rows instead (it
        // would, knowing nothing of the tables' sizes).
        let org = if b == Backend::Sqlite && query.filter.as_ref().is_some_and(looks_up_values) {
            "+"
        } else {
            ""
        };
        let mut predicate = format!("{org}{name}.organisation_id = $1");
        if let Some(filter) = &query.filter {
            predicate.push_str(" AND ");
            condition_sql(b, table, filter, &mut predicate, &mut binds);
        }
        if let Some(integration) = &query.created_by {
            binds.push(Bind::Str(integration.clone()));
            predicate.push_str(&format!(" AND {name}.integration_id = ${}", binds.len()));
        }
        let n = binds.len();
        let page = format!(
            "SELECT {columns}, {} FROM {name} WHERE {predicate} ORDER BY {} LIMIT ${} OFFSET ${}",
            table.external_id_column(2),
            order_sql(b, table, query.sort),
            n + 1,
            n + 2
        );
        let mut page_binds = binds.clone();
        page_binds.push(Bind::Int(i64::from(query.limit)));
        page_binds.push(Bind::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
        Self {
            count: if query.filter.is_some() || query.created_by.is_some() {
                // The count names $2 only through externalId filters; a no-op mention keeps
                // the parameter list the same for both statements.
                format!("SELECT COUNT(*) FROM {name} WHERE {predicate} AND $2 IS NOT NULL")
            } else {
                count_sql(table)
            },
            binds,
            page,
            page_binds,
        }
    }
}

impl ListSql {
    /// Counts the matches and, unless the page is empty, reads the page: the number of all
    /// matches, and the page's rows.
    pub(crate) async fn run(&self, tx: &mut Tx, query: &ListQuery) -> Result<(u64, Vec<Row>)> {
        let total: i64 = bind_all(stmt(&self.count), &self.binds)
            .fetch_scalar(tx)
            .await?;
        let total = u64::try_from(total).unwrap_or_default();
        if query.limit == 0 || query.offset >= total {
            return Ok((total, Vec::new()));
        }
        let rows = bind_all(stmt(&self.page), &self.page_binds)
            .fetch_all(tx)
            .await?;
        Ok((total, rows))
    }
}

pub(crate) fn bind_all<'q>(mut q: Query<'q>, binds: &'q [Bind]) -> Query<'q> {
    for b in binds {
        q = match b {
            Bind::Str(s) => q.bind(s.as_str()),
            Bind::Int(i) => q.bind(*i),
            Bind::Bool(v) => q.bind(*v),
        };
    }
    q
}

/// Appends the SQL for `c` to `sql`, pushing its parameters onto `binds` (`$1` is always
/// the organisation). Every comparison evaluates to true or false, never NULL, so `not`
/// behaves as SCIM expects on absent values.
fn condition_sql(b: Backend, table: Table, c: &Condition, sql: &mut String, binds: &mut Vec<Bind>) {
    let this = table.name();
    match c {
        Condition::Present(Attr::Member) => {
            sql.push_str(&format!(
                "(EXISTS (SELECT 1 FROM scim_group_members pm WHERE pm.group_id = {this}.id))"
            ));
        }
        Condition::Present(Attr::Value(path)) => {
            let a = bind(binds, Bind::Str(path.clone()));
            sql.push_str(&format!(
                "({this}.id IN (SELECT v.user_id FROM scim_user_values v \
                 WHERE v.organisation_id = $1 AND v.attribute = {a} AND v.value_key IS NOT NULL))"
            ));
        }
        Condition::Present(Attr::ExternalId) => {
            sql.push_str(&format!(
                "({this}.id IN (SELECT x.resource_id FROM {} x WHERE x.integration_id = $2))",
                table.external_ids()
            ));
        }
        Condition::Present(attr) => {
            sql.push_str(&format!("({} IS NOT NULL)", column(table, attr)));
        }
        Condition::Compare(Attr::Member, _, operand) => {
            // The parser lets only `eq` through for members.
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&format!(
                "(EXISTS (SELECT 1 FROM scim_group_members cm WHERE cm.group_id = {this}.id AND cm.user_id = {p}))"
            ));
        }
        Condition::Compare(Attr::Value(path), op, operand) => {
            let a = bind(binds, Bind::Str(path.clone()));
            // `ne` is "not equal": users without the attribute match too.
            let (negate, op) = if *op == Op::Ne {
                ("NOT ", Op::Eq)
            } else {
                ("", *op)
            };
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&format!(
                "({this}.id {negate}IN (SELECT v.user_id FROM scim_user_values v \
                 WHERE v.organisation_id = $1 AND v.attribute = {a} AND {}))",
                compare_sql(b, "v.value_key", op, &p)
            ));
        }
        Condition::Compare(Attr::ExternalId, op, operand) => {
            let (negate, op) = if *op == Op::Ne {
                ("NOT ", Op::Eq)
            } else {
                ("", *op)
            };
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&format!(
                "({this}.id {negate}IN (SELECT x.resource_id FROM {} x WHERE x.integration_id = $2 AND {}))",
                table.external_ids(),
                compare_sql(b, "x.external_id", op, &p)
            ));
        }
        Condition::Compare(attr, op, operand) => {
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&compare_sql(b, &column(table, attr), *op, &p));
        }
        Condition::AnyElement(attribute, element) => {
            let a = bind(binds, Bind::Str((*attribute).to_owned()));
            sql.push_str(&format!(
                "({this}.id IN (SELECT e.user_id FROM scim_user_values e \
                 WHERE e.organisation_id = $1 AND e.attribute = {a} AND "
            ));
            element_sql(b, element, sql, binds);
            sql.push_str("))");
        }
        Condition::Not(inner) => {
            sql.push_str("(NOT ");
            condition_sql(b, table, inner, sql, binds);
            sql.push(')');
        }
        Condition::And(items) | Condition::Or(items) => {
            let joiner = if matches!(c, Condition::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql.push_str(joiner);
                }
                condition_sql(b, table, item, sql, binds);
            }
            sql.push(')');
        }
    }
}

/// Whether `c` must hold an equality on an indexed value (`emails.value eq`, `title eq`), so
/// the rows it selects are best found through `scim_user_values_lookup`.
fn looks_up_values(c: &Condition) -> bool {
    fn element(c: &ElementCondition) -> bool {
        match c {
            ElementCondition::Compare(Field::Value, Op::Eq, _) => true,
            ElementCondition::And(items) => items.iter().any(element),
            _ => false,
        }
    }
    match c {
        Condition::AnyElement(_, e) => element(e),
        Condition::Compare(Attr::Value(_), Op::Eq, _) => true,
        Condition::And(items) => items.iter().any(looks_up_values),
        _ => false,
    }
}

/// A condition on one row of `scim_user_values e` (one element of a multi-valued attribute).
fn element_sql(b: Backend, c: &ElementCondition, sql: &mut String, binds: &mut Vec<Bind>) {
    let col = |f: Field| match f {
        Field::Value => "e.value_key",
        Field::Type => "e.type_key",
        Field::Display => "e.display_key",
        Field::Primary => "e.is_primary",
    };
    match c {
        ElementCondition::Present(Field::Primary) => sql.push_str("(e.is_primary = TRUE)"),
        ElementCondition::Present(f) => sql.push_str(&format!("({} IS NOT NULL)", col(*f))),
        ElementCondition::Compare(f, op, operand) => {
            let p = bind(binds, operand_bind(operand));
            sql.push_str(&compare_sql(b, col(*f), *op, &p));
        }
        ElementCondition::Not(inner) => {
            sql.push_str("(NOT ");
            element_sql(b, inner, sql, binds);
            sql.push(')');
        }
        ElementCondition::And(items) | ElementCondition::Or(items) => {
            let joiner = if matches!(c, ElementCondition::And(_)) {
                " AND "
            } else {
                " OR "
            };
            sql.push('(');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    sql.push_str(joiner);
                }
                element_sql(b, item, sql, binds);
            }
            sql.push(')');
        }
    }
}

fn bind(binds: &mut Vec<Bind>, value: Bind) -> String {
    binds.push(value);
    format!("${}", binds.len())
}

fn operand_bind(operand: &Operand) -> Bind {
    match operand {
        Operand::Str(s) => Bind::Str(s.clone()),
        Operand::Bool(v) => Bind::Bool(*v),
        Operand::Time(ms) => Bind::Int(*ms),
    }
}

/// `col op p`, true or false even when `col` is NULL.
fn compare_sql(b: Backend, col: &str, op: Op, p: &str) -> String {
    let expr = match op {
        Op::Eq => format!("{col} = {p}"),
        Op::Ne => format!("{col} <> {p}"),
        Op::Co => b.contains(col, p),
        Op::Sw => format!("substr({col}, 1, length({p})) = {p}"),
        Op::Ew => match b {
            Backend::Sqlite => format!("substr({col}, -length({p})) = {p}"),
            Backend::Postgres => format!("right({col}, length({p})) = {p}"),
        },
        Op::Gt => format!("{col} > {p}"),
        Op::Ge => format!("{col} >= {p}"),
        Op::Lt => format!("{col} < {p}"),
        Op::Le => format!("{col} <= {p}"),
    };
    if op == Op::Ne {
        format!("({col} IS NULL OR {expr})")
    } else {
        format!("({col} IS NOT NULL AND {expr})")
    }
}

fn column(table: Table, attr: &Attr) -> String {
    let name = match attr {
        Attr::Id => "id",
        Attr::UserName => "user_name_key",
        Attr::Active => "active",
        Attr::DisplayName => "display_name_key",
        Attr::Created => "created_at",
        Attr::LastModified => "updated_at",
        // Membership, externalIds and indexed values are subqueries, built by the caller.
        Attr::Member | Attr::ExternalId | Attr::Value(_) => "id",
    };
    format!("{}.{name}", table.name())
}

fn order_sql(b: Backend, table: Table, sort: Option<Sort>) -> String {
    // Creation order: created_at, then the insertion sequence for rows created in the same
    // millisecond (SQLite's rowid; an identity column on PostgreSQL).
    let sequence = match b {
        Backend::Sqlite => "rowid",
        Backend::Postgres => "seq",
    };
    let Some(sort) = sort else {
        return format!("created_at, {sequence}");
    };
    let col = match sort.key {
        SortKey::Id => "id".to_owned(),
        SortKey::UserName => "user_name_key".to_owned(),
        SortKey::DisplayName => "display_name_key".to_owned(),
        SortKey::ExternalId => table.external_id_expr(2),
        SortKey::Created => "created_at".to_owned(),
        SortKey::LastModified => "updated_at".to_owned(),
    };
    let direction = if sort.descending { "DESC" } else { "ASC" };
    // Resources without the attribute come last either way (RFC 7644 §3.4.2.3).
    format!("{col} IS NULL, {col} {direction}, created_at, {sequence}")
}

/// The `If-Match` condition of a guarded write, its parameters numbered from `first`, and
/// the versions to bind. An If-Match naming none of our versions binds -1, which no row has.
pub(crate) fn version_guard(if_match: Option<&[i64]>, first: usize) -> (String, Vec<i64>) {
    match if_match {
        None => (String::new(), Vec::new()),
        Some([]) => (format!(" AND version = ${first}"), vec![-1]),
        Some(versions) => (
            format!(
                " AND version IN ({})",
                super::placeholders(first, versions.len())
            ),
            versions.to_vec(),
        ),
    }
}
