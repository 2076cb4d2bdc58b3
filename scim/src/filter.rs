//! List filters (RFC 7644 §3.4.2.2) for Users and Groups, parsed with `scim_v2` and
//! translated into a typed condition that storage turns into a parameterised query.
//!
//! Only attributes storage can answer from an index are accepted; anything else is an
//! `invalidFilter` error, never "every resource".

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter};

use crate::error::ScimError;
use crate::schema;
use crate::user::fold_case;

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;

/// An attribute a filter may compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    Id,
    /// Users only. Compared case-insensitively: values arrive already case-folded.
    UserName,
    ExternalId,
    /// Users only.
    Active,
    /// Compared case-insensitively: values arrive already case-folded.
    DisplayName,
    /// Groups only: `members eq "id"` or `members.value eq "id"`.
    Member,
}

/// Which resource a filter selects from, and so which attributes it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

impl Resource {
    fn attributes(self) -> &'static [(&'static str, Attr)] {
        match self {
            Resource::User => &[
                ("id", Attr::Id),
                ("userName", Attr::UserName),
                ("externalId", Attr::ExternalId),
                ("active", Attr::Active),
                ("displayName", Attr::DisplayName),
            ],
            Resource::Group => &[
                ("id", Attr::Id),
                ("displayName", Attr::DisplayName),
                ("externalId", Attr::ExternalId),
                ("members", Attr::Member),
            ],
        }
    }

    fn schema(self) -> &'static str {
        match self {
            Resource::User => schema::USER,
            Resource::Group => schema::GROUP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Str(String),
    Bool(bool),
}

/// A filter over Users, in terms storage understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Compare(Attr, Op, Operand),
    Present(Attr),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// Parses the `filter` query parameter of `GET /Users` or `GET /Groups`.
pub fn parse_filter(resource: Resource, input: &str) -> Result<Condition, ScimError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "filter is longer than {MAX_FILTER_LEN} bytes"
        )));
    }
    let filter: Filter = input
        .parse()
        .map_err(|e| ScimError::invalid_filter(format!("{input:?} is not a valid filter: {e}")))?;
    translate(resource, &filter)
}

fn translate(resource: Resource, filter: &Filter) -> Result<Condition, ScimError> {
    let recurse = |f: &Filter| translate(resource, f);
    Ok(match filter {
        Filter::Attr(AttrExp::Present(p)) => Condition::Present(attr(resource, p)?),
        Filter::Attr(AttrExp::Comparison(p, op, value)) => {
            comparison(attr(resource, p)?, op, value)?
        }
        Filter::ValuePath(vp) => {
            return Err(ScimError::invalid_filter(format!(
                "filtering on {}[...] is not supported",
                vp.attr
            )))
        }
        Filter::Not(inner) => Condition::Not(Box::new(recurse(inner)?)),
        Filter::And(items) => Condition::And(items.iter().map(recurse).collect::<Result<_, _>>()?),
        Filter::Or(items) => Condition::Or(items.iter().map(recurse).collect::<Result<_, _>>()?),
    })
}

fn attr(resource: Resource, p: &AttrPath) -> Result<Attr, ScimError> {
    let core = p
        .uri
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(resource.schema()));
    let found = resource
        .attributes()
        .iter()
        .find(|(name, _)| p.name.eq_ignore_ascii_case(name))
        .map(|(_, a)| *a);
    // `members.value` names the member id, like `members`.
    let sub_ok = match (found, p.sub_attr.as_deref()) {
        (_, None) => true,
        (Some(Attr::Member), Some(sub)) => sub.eq_ignore_ascii_case("value"),
        _ => false,
    };
    match found {
        Some(a) if core && sub_ok => Ok(a),
        _ => {
            let supported: Vec<&str> = resource.attributes().iter().map(|(n, _)| *n).collect();
            Err(ScimError::invalid_filter(format!(
                "filtering on {p} is not supported; supported: {}",
                supported.join(", ")
            )))
        }
    }
}

fn comparison(attr: Attr, op: &CompareOp, value: &CompValue) -> Result<Condition, ScimError> {
    let op = match op {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Co,
        CompareOp::Sw => Op::Sw,
        CompareOp::Ew => Op::Ew,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    };
    let operand = match (attr, value) {
        (Attr::Active, CompValue::True) => Operand::Bool(true),
        (Attr::Active, CompValue::False) => Operand::Bool(false),
        (Attr::Active, CompValue::Str(s)) => Operand::Bool(
            crate::user::boolean("active", &serde_json::Value::String(s.clone()))
                .map_err(|_| ScimError::invalid_filter("active compares with true or false"))?,
        ),
        (Attr::UserName | Attr::DisplayName, CompValue::Str(s)) => Operand::Str(fold_case(s)),
        (Attr::Id | Attr::ExternalId | Attr::Member, CompValue::Str(s)) => Operand::Str(s.clone()),
        _ => {
            return Err(ScimError::invalid_filter(format!(
                "{attr:?} cannot be compared with {value:?}"
            )))
        }
    };
    if matches!(operand, Operand::Bool(_)) && !matches!(op, Op::Eq | Op::Ne) {
        return Err(ScimError::invalid_filter("booleans support only eq and ne"));
    }
    if attr == Attr::Member && op != Op::Eq {
        return Err(ScimError::invalid_filter("members supports only eq"));
    }
    Ok(Condition::Compare(attr, op, operand))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;

    fn s(v: &str) -> Operand {
        Operand::Str(v.into())
    }

    #[test]
    fn translates_what_idps_send() {
        let cases = [
            (
                r#"userName eq "Jane@Example.COM""#,
                Condition::Compare(Attr::UserName, Op::Eq, s("jane@example.com")),
            ),
            (
                r#"USERNAME EQ "x""#,
                Condition::Compare(Attr::UserName, Op::Eq, s("x")),
            ),
            (
                r#"externalId eq "AbC""#,
                Condition::Compare(Attr::ExternalId, Op::Eq, s("AbC")),
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
                Condition::Compare(Attr::UserName, Op::Eq, s("x")),
            ),
            (
                "active eq false",
                Condition::Compare(Attr::Active, Op::Eq, Operand::Bool(false)),
            ),
            (
                r#"active eq "False""#,
                Condition::Compare(Attr::Active, Op::Eq, Operand::Bool(false)),
            ),
            ("externalId pr", Condition::Present(Attr::ExternalId)),
            (
                r#"userName sw "a" and not (active eq true)"#,
                Condition::And(vec![
                    Condition::Compare(Attr::UserName, Op::Sw, s("a")),
                    Condition::Not(Box::new(Condition::Compare(
                        Attr::Active,
                        Op::Eq,
                        Operand::Bool(true),
                    ))),
                ]),
            ),
            (
                r#"userName eq "a" or userName eq "b" and active eq true"#,
                Condition::Or(vec![
                    Condition::Compare(Attr::UserName, Op::Eq, s("a")),
                    Condition::And(vec![
                        Condition::Compare(Attr::UserName, Op::Eq, s("b")),
                        Condition::Compare(Attr::Active, Op::Eq, Operand::Bool(true)),
                    ]),
                ]),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_filter(Resource::User, input).unwrap(),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn unsupported_or_malformed_filters_are_invalid_filter() {
        for input in [
            "",
            "userName",
            r#"userName eq"#,
            r#"userName eq "unterminated"#,
            r#"userName zz "x""#,
            r#"title eq "x""#,
            r#"members eq "x""#,
            r#"emails[type eq "work"].value eq "x""#,
            r#"emails[type eq "work"]"#,
            r#"name.givenName eq "x""#,
            r#"urn:other:schema:userName eq "x""#,
            "active gt true",
            "userName eq 5",
            r#"active eq "maybe""#,
            &format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN)),
            &"(".repeat(500),
        ] {
            let err = parse_filter(Resource::User, input).expect_err(input);
            assert_eq!(err.status, 400);
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{input}");
        }
    }

    #[test]
    fn group_filters() {
        assert_eq!(
            parse_filter(Resource::Group, r#"displayName eq "Sales EMEA""#).unwrap(),
            Condition::Compare(Attr::DisplayName, Op::Eq, s("sales emea"))
        );
        assert_eq!(
            parse_filter(Resource::Group, r#"members.value eq "u1" and id eq "g1""#).unwrap(),
            Condition::And(vec![
                Condition::Compare(Attr::Member, Op::Eq, s("u1")),
                Condition::Compare(Attr::Id, Op::Eq, s("g1")),
            ])
        );
        for bad in [
            r#"userName eq "x""#,
            r#"members co "x""#,
            r#"members.display eq "x""#,
            "active eq true",
        ] {
            assert_eq!(
                parse_filter(Resource::Group, bad).unwrap_err().scim_type,
                Some(crate::ScimType::InvalidFilter),
                "{bad}"
            );
        }
    }
}
