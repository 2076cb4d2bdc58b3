//! List filters (RFC 7644 §3.4.2.2) for Users, parsed with `scim_v2` and translated into a
//! typed condition that storage turns into a parameterised query.
//!
//! Only attributes storage can answer from an index are accepted; anything else is an
//! `invalidFilter` error, never "every user".

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter};

use crate::error::ScimError;
use crate::schema;
use crate::user::user_name_key;

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;

/// A User attribute a filter may compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAttr {
    Id,
    /// Compared case-insensitively: values arrive already case-folded.
    UserName,
    ExternalId,
    Active,
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
    Compare(UserAttr, Op, Operand),
    Present(UserAttr),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// Parses the `filter` query parameter of `GET /Users`.
pub fn parse_user_filter(input: &str) -> Result<Condition, ScimError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "filter is longer than {MAX_FILTER_LEN} bytes"
        )));
    }
    let filter: Filter = input
        .parse()
        .map_err(|e| ScimError::invalid_filter(format!("{input:?} is not a valid filter: {e}")))?;
    translate(&filter)
}

fn translate(filter: &Filter) -> Result<Condition, ScimError> {
    Ok(match filter {
        Filter::Attr(AttrExp::Present(p)) => Condition::Present(attr(p)?),
        Filter::Attr(AttrExp::Comparison(p, op, value)) => comparison(attr(p)?, op, value)?,
        Filter::ValuePath(vp) => {
            return Err(ScimError::invalid_filter(format!(
                "filtering on {}[...] is not supported",
                vp.attr
            )))
        }
        Filter::Not(inner) => Condition::Not(Box::new(translate(inner)?)),
        Filter::And(items) => {
            Condition::And(items.iter().map(translate).collect::<Result<_, _>>()?)
        }
        Filter::Or(items) => Condition::Or(items.iter().map(translate).collect::<Result<_, _>>()?),
    })
}

fn attr(p: &AttrPath) -> Result<UserAttr, ScimError> {
    let core = p
        .uri
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(schema::USER));
    let found = [
        ("id", UserAttr::Id),
        ("userName", UserAttr::UserName),
        ("externalId", UserAttr::ExternalId),
        ("active", UserAttr::Active),
    ]
    .into_iter()
    .find(|(name, _)| p.name.eq_ignore_ascii_case(name))
    .map(|(_, a)| a);
    match found {
        Some(a) if core && p.sub_attr.is_none() => Ok(a),
        _ => Err(ScimError::invalid_filter(format!(
            "filtering on {p} is not supported; supported: id, userName, externalId, active"
        ))),
    }
}

fn comparison(attr: UserAttr, op: &CompareOp, value: &CompValue) -> Result<Condition, ScimError> {
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
        (UserAttr::Active, CompValue::True) => Operand::Bool(true),
        (UserAttr::Active, CompValue::False) => Operand::Bool(false),
        (UserAttr::Active, CompValue::Str(s)) => Operand::Bool(
            crate::user::boolean("active", &serde_json::Value::String(s.clone()))
                .map_err(|_| ScimError::invalid_filter("active compares with true or false"))?,
        ),
        (UserAttr::UserName, CompValue::Str(s)) => Operand::Str(user_name_key(s)),
        (UserAttr::Id | UserAttr::ExternalId, CompValue::Str(s)) => Operand::Str(s.clone()),
        _ => {
            return Err(ScimError::invalid_filter(format!(
                "{attr:?} cannot be compared with {value:?}"
            )))
        }
    };
    if matches!(operand, Operand::Bool(_)) && !matches!(op, Op::Eq | Op::Ne) {
        return Err(ScimError::invalid_filter("booleans support only eq and ne"));
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
                Condition::Compare(UserAttr::UserName, Op::Eq, s("jane@example.com")),
            ),
            (
                r#"USERNAME EQ "x""#,
                Condition::Compare(UserAttr::UserName, Op::Eq, s("x")),
            ),
            (
                r#"externalId eq "AbC""#,
                Condition::Compare(UserAttr::ExternalId, Op::Eq, s("AbC")),
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
                Condition::Compare(UserAttr::UserName, Op::Eq, s("x")),
            ),
            (
                "active eq false",
                Condition::Compare(UserAttr::Active, Op::Eq, Operand::Bool(false)),
            ),
            (
                r#"active eq "False""#,
                Condition::Compare(UserAttr::Active, Op::Eq, Operand::Bool(false)),
            ),
            ("externalId pr", Condition::Present(UserAttr::ExternalId)),
            (
                r#"userName sw "a" and not (active eq true)"#,
                Condition::And(vec![
                    Condition::Compare(UserAttr::UserName, Op::Sw, s("a")),
                    Condition::Not(Box::new(Condition::Compare(
                        UserAttr::Active,
                        Op::Eq,
                        Operand::Bool(true),
                    ))),
                ]),
            ),
            (
                r#"userName eq "a" or userName eq "b" and active eq true"#,
                Condition::Or(vec![
                    Condition::Compare(UserAttr::UserName, Op::Eq, s("a")),
                    Condition::And(vec![
                        Condition::Compare(UserAttr::UserName, Op::Eq, s("b")),
                        Condition::Compare(UserAttr::Active, Op::Eq, Operand::Bool(true)),
                    ]),
                ]),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_user_filter(input).unwrap(), expected, "{input}");
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
            let err = parse_user_filter(input).expect_err(input);
            assert_eq!(err.status, 400);
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{input}");
        }
    }
}
