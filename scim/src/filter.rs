//! List filters (RFC 7644 §3.4.2.2) for Users and Groups, parsed with `scim_v2` and
//! translated into a typed condition that storage turns into a parameterised query.
//!
//! Every attribute the service stores can be filtered: the indexed columns, single-valued
//! strings (`title`, `name.givenName`, enterprise attributes), elements of multi-valued
//! attributes (`emails[type eq "work" and value co "@example.com"]`, `emails.value`), and
//! `meta.created` / `meta.lastModified`. Entra's `emails[type eq "work"].value eq "x"`, which
//! the RFC grammar does not allow, is rewritten once here into the equivalent value path.
//! Anything else is an `invalidFilter` error, never "every resource".

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};

use crate::error::ScimError;
use crate::schema::{self, Kind, ENTERPRISE_ATTRS, ENTERPRISE_USER, USER_ATTRS};
use crate::user::fold_case;

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;

/// The deepest nesting of parentheses and value-path brackets accepted. Real IdPs send one
/// or two levels; the limit keeps the parser and the SQL it becomes far from any stack or
/// expression-depth limit.
pub const MAX_FILTER_DEPTH: usize = 16;

/// The most attribute comparisons and presence tests one filter may hold, counting those
/// inside value paths and under `not`. Each term is a probe of the values index, and a term
/// like `emails co "x"` cannot use it at all: 195 of them, joined by `or` and well within
/// [`MAX_FILTER_LEN`], made one query scan for a minute. Real IdPs send one to a few terms.
pub const MAX_FILTER_TERMS: usize = 50;

/// An attribute a filter may compare.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    Created,
    LastModified,
    /// Users only: a single-valued string attribute by its stored path (`title`,
    /// `name.givenName`, `urn:...:enterprise:2.0:User:manager.value`), compared
    /// case-insensitively.
    Value(String),
}

/// A field of an element of a multi-valued attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `value` (`formatted` for addresses).
    Value,
    Type,
    Display,
    Primary,
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
    /// Milliseconds since the epoch (`meta.created`, `meta.lastModified`).
    Time(i64),
}

/// A condition on one element of a multi-valued attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementCondition {
    Compare(Field, Op, Operand),
    Present(Field),
    Not(Box<ElementCondition>),
    And(Vec<ElementCondition>),
    Or(Vec<ElementCondition>),
}

/// A filter, in terms storage understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Compare(Attr, Op, Operand),
    Present(Attr),
    /// Some element of the multi-valued attribute (e.g. `emails`) satisfies the condition.
    AnyElement(&'static str, ElementCondition),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

/// Which resource a filter selects from, and so which attributes it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    User,
    Group,
}

impl Resource {
    fn schema(self) -> &'static str {
        match self {
            Resource::User => schema::USER,
            Resource::Group => schema::GROUP,
        }
    }
}

/// Parses the `filter` query parameter of `GET /Users` or `GET /Groups`.
pub fn parse_filter(resource: Resource, input: &str) -> Result<Condition, ScimError> {
    check_size(input).map_err(|e| ScimError::invalid_filter(format!("filter {e}")))?;
    let rewritten = sub_attribute_after_value_path(input);
    let filter: Filter = rewritten
        .parse()
        .map_err(|e| ScimError::invalid_filter(format!("{input:?} is not a valid filter: {e}")))?;
    let terms = terms(&filter);
    if terms > MAX_FILTER_TERMS {
        return Err(ScimError::invalid_filter(format!(
            "the filter has {terms} comparisons; at most {MAX_FILTER_TERMS} are accepted"
        )));
    }
    translate(resource, &filter)
}

/// The attribute comparisons and presence tests in `filter`, wherever they sit. The
/// recursion is as deep as the filter's nesting, which [`check_size`] has bounded.
fn terms(filter: &Filter) -> usize {
    match filter {
        Filter::Attr(_) => 1,
        Filter::ValuePath(vp) => element_terms(&vp.filter),
        Filter::Not(inner) => terms(inner),
        Filter::And(items) | Filter::Or(items) => items.iter().map(terms).sum(),
    }
}

fn element_terms(filter: &ValFilter) -> usize {
    match filter {
        ValFilter::Attr(_) => 1,
        ValFilter::Not(inner) => element_terms(inner),
        ValFilter::And(items) | ValFilter::Or(items) => items.iter().map(element_terms).sum(),
    }
}

/// Refuses a filter or PATCH path longer than [`MAX_FILTER_LEN`] or nested deeper than
/// [`MAX_FILTER_DEPTH`], before any parser sees it.
pub(crate) fn check_size(input: &str) -> Result<(), String> {
    if input.len() > MAX_FILTER_LEN {
        return Err(format!("is longer than {MAX_FILTER_LEN} bytes"));
    }
    if nesting_depth(input) > MAX_FILTER_DEPTH {
        return Err(format!(
            "nests parentheses or brackets more than {MAX_FILTER_DEPTH} deep"
        ));
    }
    Ok(())
}

/// The deepest nesting of `(` and `[` outside string literals.
fn nesting_depth(input: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for c in input.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn translate(resource: Resource, filter: &Filter) -> Result<Condition, ScimError> {
    let recurse = |f: &Filter| translate(resource, f);
    Ok(match filter {
        Filter::Attr(AttrExp::Present(p)) => match target(resource, p)? {
            Target::Attr(a) => Condition::Present(a),
            Target::Element(name, field) => {
                Condition::AnyElement(name, ElementCondition::Present(field))
            }
        },
        Filter::Attr(AttrExp::Comparison(p, op, value)) => {
            let op = op_of(op);
            match target(resource, p)? {
                Target::Attr(a) => {
                    let operand = operand(&a, op, value)?;
                    Condition::Compare(a, op, operand)
                }
                Target::Element(name, field) => Condition::AnyElement(
                    name,
                    ElementCondition::Compare(field, op, element_operand(field, op, value)?),
                ),
            }
        }
        Filter::ValuePath(vp) => {
            if resource == Resource::Group && vp.attr.name.eq_ignore_ascii_case("members") {
                return member_value_path(&vp.filter);
            }
            let name = multi_valued(resource, &vp.attr)?;
            Condition::AnyElement(name, element_condition(&vp.filter)?)
        }
        Filter::Not(inner) => Condition::Not(Box::new(recurse(inner)?)),
        Filter::And(items) => Condition::And(items.iter().map(recurse).collect::<Result<_, _>>()?),
        Filter::Or(items) => Condition::Or(items.iter().map(recurse).collect::<Result<_, _>>()?),
    })
}

/// What an attribute path in a filter designates.
enum Target {
    Attr(Attr),
    /// A field of the elements of a multi-valued attribute.
    Element(&'static str, Field),
}

fn unsupported(p: &AttrPath) -> ScimError {
    ScimError::invalid_filter(format!("filtering on {p} is not supported"))
}

fn target(resource: Resource, p: &AttrPath) -> Result<Target, ScimError> {
    let name = p.name.as_str();
    let sub = p.sub_attr.as_deref();
    let is = |n: &str| name.eq_ignore_ascii_case(n);
    let uri = p.uri.as_deref();
    if uri.is_some_and(|u| u.eq_ignore_ascii_case(ENTERPRISE_USER)) && resource == Resource::User {
        let attr = schema::find(ENTERPRISE_ATTRS, name).ok_or_else(|| unsupported(p))?;
        let path = match (attr.kind, sub) {
            (Kind::String, None) => format!("{ENTERPRISE_USER}:{}", attr.name),
            // The manager is filtered by its id.
            (Kind::Complex(_), None) => format!("{ENTERPRISE_USER}:{}.value", attr.name),
            (Kind::Complex(subs), Some(s)) => {
                let s = schema::find_sub(subs, s).ok_or_else(|| unsupported(p))?;
                format!("{ENTERPRISE_USER}:{}.{}", attr.name, s.name)
            }
            _ => return Err(unsupported(p)),
        };
        return Ok(Target::Attr(Attr::Value(path)));
    }
    if uri.is_some_and(|u| !u.eq_ignore_ascii_case(resource.schema())) {
        return Err(unsupported(p));
    }
    if is("meta") {
        return match sub {
            Some(s) if s.eq_ignore_ascii_case("created") => Ok(Target::Attr(Attr::Created)),
            Some(s) if s.eq_ignore_ascii_case("lastModified") => {
                Ok(Target::Attr(Attr::LastModified))
            }
            _ => Err(unsupported(p)),
        };
    }
    if is("id") && sub.is_none() {
        return Ok(Target::Attr(Attr::Id));
    }
    if is("externalId") && sub.is_none() {
        return Ok(Target::Attr(Attr::ExternalId));
    }
    if is("displayName") && sub.is_none() {
        return Ok(Target::Attr(Attr::DisplayName));
    }
    match resource {
        Resource::Group => {
            if is("members") && sub.is_none_or(|s| s.eq_ignore_ascii_case("value")) {
                return Ok(Target::Attr(Attr::Member));
            }
            Err(unsupported(p))
        }
        Resource::User => {
            if is("userName") && sub.is_none() {
                return Ok(Target::Attr(Attr::UserName));
            }
            let attr = schema::find(USER_ATTRS, name).ok_or_else(|| unsupported(p))?;
            match (attr.kind, sub) {
                (Kind::Boolean, None) => Ok(Target::Attr(Attr::Active)),
                (Kind::String, None) => Ok(Target::Attr(Attr::Value(attr.name.to_owned()))),
                (Kind::Complex(subs), Some(s)) => {
                    let s = schema::find_sub(subs, s).ok_or_else(|| unsupported(p))?;
                    Ok(Target::Attr(Attr::Value(format!(
                        "{}.{}",
                        attr.name, s.name
                    ))))
                }
                (Kind::MultiComplex(_), sub) => Ok(Target::Element(
                    attr.name,
                    field(attr.name, sub.unwrap_or("value")).ok_or_else(|| unsupported(p))?,
                )),
                _ => Err(unsupported(p)),
            }
        }
    }
}

/// The element field a sub-attribute of a multi-valued attribute names.
fn field(attribute: &str, sub: &str) -> Option<Field> {
    let is = |n: &str| sub.eq_ignore_ascii_case(n);
    if is("value") && attribute != "addresses" || is("formatted") && attribute == "addresses" {
        Some(Field::Value)
    } else if is("type") {
        Some(Field::Type)
    } else if is("display") && attribute != "addresses" {
        Some(Field::Display)
    } else if is("primary") {
        Some(Field::Primary)
    } else {
        None
    }
}

fn multi_valued(resource: Resource, p: &AttrPath) -> Result<&'static str, ScimError> {
    let core = p
        .uri
        .as_deref()
        .is_none_or(|u| u.eq_ignore_ascii_case(resource.schema()));
    match schema::find(USER_ATTRS, &p.name) {
        Some(attr)
            if resource == Resource::User
                && core
                && p.sub_attr.is_none()
                && matches!(attr.kind, Kind::MultiComplex(_)) =>
        {
            Ok(attr.name)
        }
        _ => Err(ScimError::invalid_filter(format!(
            "{p}[...] is not a multi-valued attribute that can be filtered"
        ))),
    }
}

fn element_condition(filter: &ValFilter) -> Result<ElementCondition, ScimError> {
    Ok(match filter {
        ValFilter::Attr(AttrExp::Present(p)) => ElementCondition::Present(element_field(p)?),
        ValFilter::Attr(AttrExp::Comparison(p, op, value)) => {
            let field = element_field(p)?;
            let op = op_of(op);
            ElementCondition::Compare(field, op, element_operand(field, op, value)?)
        }
        ValFilter::Not(inner) => ElementCondition::Not(Box::new(element_condition(inner)?)),
        ValFilter::And(items) => ElementCondition::And(
            items
                .iter()
                .map(element_condition)
                .collect::<Result<_, _>>()?,
        ),
        ValFilter::Or(items) => ElementCondition::Or(
            items
                .iter()
                .map(element_condition)
                .collect::<Result<_, _>>()?,
        ),
    })
}

fn element_field(p: &AttrPath) -> Result<Field, ScimError> {
    if p.uri.is_some() || p.sub_attr.is_some() {
        return Err(unsupported(p));
    }
    // `formatted` only means something for addresses, `value` for the others; inside brackets
    // either names the element's main value.
    field("", &p.name)
        .or_else(|| field("addresses", &p.name))
        .ok_or_else(|| unsupported(p))
}

/// `members[value eq "a" or value eq "b"]` on a group.
fn member_value_path(filter: &ValFilter) -> Result<Condition, ScimError> {
    Ok(match filter {
        ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, CompValue::Str(id)))
            if p.name.eq_ignore_ascii_case("value") && p.sub_attr.is_none() =>
        {
            Condition::Compare(Attr::Member, Op::Eq, Operand::Str(id.clone()))
        }
        ValFilter::Or(items) => Condition::Or(
            items
                .iter()
                .map(member_value_path)
                .collect::<Result<_, _>>()?,
        ),
        _ => {
            return Err(ScimError::invalid_filter(
                "members[...] supports value eq \"id\", joined by or",
            ))
        }
    })
}

fn op_of(op: &CompareOp) -> Op {
    match op {
        CompareOp::Eq => Op::Eq,
        CompareOp::Ne => Op::Ne,
        CompareOp::Co => Op::Co,
        CompareOp::Sw => Op::Sw,
        CompareOp::Ew => Op::Ew,
        CompareOp::Gt => Op::Gt,
        CompareOp::Ge => Op::Ge,
        CompareOp::Lt => Op::Lt,
        CompareOp::Le => Op::Le,
    }
}

fn boolean(value: &CompValue) -> Option<bool> {
    match value {
        CompValue::True => Some(true),
        CompValue::False => Some(false),
        CompValue::Str(s) => crate::user::boolean("", &serde_json::Value::String(s.clone())).ok(),
        _ => None,
    }
}

fn operand(attr: &Attr, op: Op, value: &CompValue) -> Result<Operand, ScimError> {
    let operand = match (attr, value) {
        (Attr::Active, v) => Operand::Bool(
            boolean(v)
                .ok_or_else(|| ScimError::invalid_filter("active compares with true or false"))?,
        ),
        (Attr::Created | Attr::LastModified, CompValue::Str(s)) => {
            Operand::Time(crate::time::parse_rfc3339_ms(s).ok_or_else(|| {
                ScimError::invalid_filter(format!("{s:?} is not an RFC 3339 date-time"))
            })?)
        }
        (Attr::UserName | Attr::DisplayName | Attr::Value(_), CompValue::Str(s)) => {
            Operand::Str(fold_case(s))
        }
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
    if *attr == Attr::Member && op != Op::Eq {
        return Err(ScimError::invalid_filter("members supports only eq"));
    }
    Ok(operand)
}

fn element_operand(field: Field, op: Op, value: &CompValue) -> Result<Operand, ScimError> {
    match (field, value) {
        (Field::Primary, v) => {
            let b = boolean(v)
                .ok_or_else(|| ScimError::invalid_filter("primary compares with true or false"))?;
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(ScimError::invalid_filter("booleans support only eq and ne"));
            }
            Ok(Operand::Bool(b))
        }
        (_, CompValue::Str(s)) => Ok(Operand::Str(fold_case(s))),
        _ => Err(ScimError::invalid_filter(format!(
            "{field:?} compares with a string, not {value:?}"
        ))),
    }
}

/// Rewrites `attr[filter].sub op value` (which Entra sends, and the RFC grammar lacks) into
/// `attr[(filter) and sub op value]`. Quoted strings are left alone.
fn sub_attribute_after_value_path(input: &str) -> String {
    let mut text = input.to_owned();
    // Each rewrite removes one "]." outside quotes, so this ends.
    while let Some(rewritten) = rewrite_once(&text) {
        text = rewritten;
    }
    text
}

fn rewrite_once(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut open = None;
    for (i, &b) in bytes.iter().enumerate() {
        if in_quotes {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_quotes = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_quotes = true,
            b'[' => open = Some(i),
            b']' if bytes.get(i + 1) == Some(&b'.') => {
                let open = open?;
                let (sub, rest) = split_comparison(&text[i + 2..])?;
                return Some(format!(
                    "{}[({}) and {}]{}",
                    &text[..open],
                    &text[open + 1..i],
                    sub,
                    rest
                ));
            }
            _ => {}
        }
    }
    None
}

/// Splits `value eq "x") or ...` into (`value eq "x"`, `) or ...`).
fn split_comparison(text: &str) -> Option<(&str, &str)> {
    let name_end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))?;
    let after_name = &text[name_end..];
    let op_start = name_end + (after_name.len() - after_name.trim_start().len());
    let op_len = text[op_start..]
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len() - op_start);
    let op = &text[op_start..op_start + op_len];
    if op.is_empty() {
        return None;
    }
    let mut end = op_start + op_len;
    if !op.eq_ignore_ascii_case("pr") {
        let after_op = &text[end..];
        let value_start = end + (after_op.len() - after_op.trim_start().len());
        let value = &text[value_start..];
        let value_len = if value.starts_with('"') {
            let mut escaped = false;
            value
                .char_indices()
                .skip(1)
                .find(|&(_, c)| {
                    let close = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    close
                })
                .map(|(j, _)| j + 1)?
        } else {
            value
                .find(|c: char| c.is_whitespace() || c == ')')
                .unwrap_or(value.len())
        };
        end = value_start + value_len;
    }
    Some((&text[..end], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScimType;

    fn s(v: &str) -> Operand {
        Operand::Str(v.into())
    }

    fn user(input: &str) -> Result<Condition, ScimError> {
        parse_filter(Resource::User, input)
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
                r#"title eq "CTO""#,
                Condition::Compare(Attr::Value("title".into()), Op::Eq, s("cto")),
            ),
            (
                r#"name.GIVENNAME sw "J""#,
                Condition::Compare(Attr::Value("name.givenName".into()), Op::Sw, s("j")),
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "R&D""#,
                Condition::Compare(
                    Attr::Value(format!("{ENTERPRISE_USER}:department")),
                    Op::Eq,
                    s("r&d"),
                ),
            ),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "m1""#,
                Condition::Compare(
                    Attr::Value(format!("{ENTERPRISE_USER}:manager.value")),
                    Op::Eq,
                    s("m1"),
                ),
            ),
            (
                r#"meta.lastModified gt "2020-03-24T10:40:37Z""#,
                Condition::Compare(Attr::LastModified, Op::Gt, Operand::Time(1_585_046_437_000)),
            ),
            (
                r#"emails eq "A@x""#,
                Condition::AnyElement(
                    "emails",
                    ElementCondition::Compare(Field::Value, Op::Eq, s("a@x")),
                ),
            ),
            (
                r#"emails.type eq "work""#,
                Condition::AnyElement(
                    "emails",
                    ElementCondition::Compare(Field::Type, Op::Eq, s("work")),
                ),
            ),
            (
                r#"emails[type eq "work" and value co "@Example.com"]"#,
                Condition::AnyElement(
                    "emails",
                    ElementCondition::And(vec![
                        ElementCondition::Compare(Field::Type, Op::Eq, s("work")),
                        ElementCondition::Compare(Field::Value, Op::Co, s("@example.com")),
                    ]),
                ),
            ),
            // Entra's form, rewritten into the value path above.
            (
                r#"emails[type eq "work"].value eq "J@x""#,
                Condition::AnyElement(
                    "emails",
                    ElementCondition::And(vec![
                        ElementCondition::Compare(Field::Type, Op::Eq, s("work")),
                        ElementCondition::Compare(Field::Value, Op::Eq, s("j@x")),
                    ]),
                ),
            ),
            (
                "phoneNumbers[primary eq true]",
                Condition::AnyElement(
                    "phoneNumbers",
                    ElementCondition::Compare(Field::Primary, Op::Eq, Operand::Bool(true)),
                ),
            ),
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
            assert_eq!(user(input).unwrap(), expected, "{input}");
        }
    }

    #[test]
    fn the_entra_rewrite_respects_quotes_and_nesting() {
        let cases = [
            (
                r#"emails[type eq "work"].value eq "x""#,
                r#"emails[(type eq "work") and value eq "x"]"#,
            ),
            (
                r#"emails[type eq "a].b"].value eq "x""#,
                r#"emails[(type eq "a].b") and value eq "x"]"#,
            ),
            (
                r#"(emails[type eq "work"].value eq "x") and active eq true"#,
                r#"(emails[(type eq "work") and value eq "x"]) and active eq true"#,
            ),
            (
                r#"emails[type eq "work"].value pr"#,
                r#"emails[(type eq "work") and value pr]"#,
            ),
            (
                r#"emails[type eq "w"].value eq "a\"b" or userName eq "u""#,
                r#"emails[(type eq "w") and value eq "a\"b"] or userName eq "u""#,
            ),
            (r#"userName eq "a].b""#, r#"userName eq "a].b""#),
        ];
        for (input, expected) in cases {
            assert_eq!(sub_attribute_after_value_path(input), expected, "{input}");
        }
    }

    #[test]
    fn nesting_is_limited_outside_strings() {
        let nested = |depth: usize| {
            format!(
                "{}userName eq \"x\"{}",
                "(".repeat(depth),
                ")".repeat(depth)
            )
        };
        assert!(user(&nested(MAX_FILTER_DEPTH)).is_ok());
        let err = user(&nested(MAX_FILTER_DEPTH + 1)).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.detail.contains("deep"), "{}", err.detail);
        let brackets = format!("userName eq \"{}\"", "([".repeat(100));
        assert!(user(&brackets).is_ok());
        assert_eq!(nesting_depth(r#"emails[type eq "a\"((("] or (a pr)"#), 1);
    }

    /// `n` copies of `term`, each with `{i}` replaced by its index, joined by `joiner`.
    fn repeated(term: &str, n: usize, joiner: &str) -> String {
        (0..n)
            .map(|i| term.replace("{i}", &i.to_string()))
            .collect::<Vec<_>>()
            .join(joiner)
    }

    #[test]
    fn terms_are_counted_wherever_they_sit_and_limited() {
        use Resource::{Group, User};
        let work_co = r#"emails[type eq "work" and value co "{i}"]"#;
        let cases = [
            (User, r#"userName eq "a""#.to_owned(), 1),
            (User, "title pr".to_owned(), 1),
            // Words that look like terms inside a string are not terms.
            (
                User,
                r#"userName eq "x) or title pr or emails[type pr] or (y""#.to_owned(),
                1,
            ),
            (User, work_co.replace("{i}", "x"), 2),
            // Entra's form counts as the value path it is rewritten into.
            (User, r#"emails[type eq "work"].value eq "x""#.to_owned(), 2),
            (User, r#"not (userName eq "a" or title pr)"#.to_owned(), 2),
            (User, r#"emails[not (type eq "home")]"#.to_owned(), 1),
            (
                User,
                r#"((userName eq "a" or title pr) and (active eq true or emails pr))"#.to_owned(),
                4,
            ),
            (
                Group,
                r#"members[value eq "a" or value eq "b"]"#.to_owned(),
                2,
            ),
            (User, repeated(r#"userName eq "u{i}""#, 50, " or "), 50),
            (User, repeated(r#"userName eq "u{i}""#, 51, " or "), 51),
            (User, repeated("title pr", 51, " and "), 51),
            (User, repeated(work_co, 25, " or "), 50),
            (
                User,
                format!("{} or title pr", repeated(work_co, 25, " or ")),
                51,
            ),
            (
                User,
                repeated(r#"not (userName eq "u{i}")"#, 51, " and "),
                51,
            ),
            (
                User,
                repeated(r#"emails[type eq "w"].value eq "{i}""#, 26, " or "),
                52,
            ),
            // The reviewer's query: 3.8 KB, within the length limit.
            (User, repeated(r#"emails co "q{i}""#, 195, " or "), 195),
            (
                Group,
                format!("members[{}]", repeated(r#"value eq "u{i}""#, 51, " or ")),
                51,
            ),
        ];
        for (resource, input, expected) in cases {
            assert!(input.len() <= MAX_FILTER_LEN, "{input}");
            let parsed: Filter = sub_attribute_after_value_path(&input).parse().unwrap();
            assert_eq!(terms(&parsed), expected, "{input}");
            let result = parse_filter(resource, &input);
            if expected <= MAX_FILTER_TERMS {
                assert!(result.is_ok(), "{input}: {result:?}");
                continue;
            }
            let err = result.expect_err(&input);
            assert_eq!(err.status, 400, "{input}");
            assert_eq!(err.scim_type, Some(ScimType::InvalidFilter), "{input}");
            assert_eq!(
                err.detail,
                format!("the filter has {expected} comparisons; at most 50 are accepted")
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
            r#"nosuch eq "x""#,
            r#"members eq "x""#,
            r#"name eq "x""#,
            r#"name.nosuch eq "x""#,
            r#"addresses.locality eq "x""#,
            r#"emails[nosuch eq "x"]"#,
            r#"title[type eq "x"]"#,
            r#"urn:other:schema:userName eq "x""#,
            r#"meta.version eq "x""#,
            r#"meta.created gt "yesterday""#,
            "active gt true",
            "emails.primary gt true",
            "userName eq 5",
            r#"active eq "maybe""#,
            &format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN)),
            &"(".repeat(500),
            r#"emails[type eq "work"]."#,
        ] {
            let err = user(input).expect_err(input);
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
        assert_eq!(
            parse_filter(Resource::Group, r#"members[value eq "u1"]"#).unwrap(),
            Condition::Compare(Attr::Member, Op::Eq, s("u1"))
        );
        for bad in [
            r#"userName eq "x""#,
            r#"members co "x""#,
            r#"members.display eq "x""#,
            "active eq true",
            r#"title eq "x""#,
        ] {
            assert_eq!(
                parse_filter(Resource::Group, bad).unwrap_err().scim_type,
                Some(ScimType::InvalidFilter),
                "{bad}"
            );
        }
    }
}
