//! The SCIM 2.0 protocol (RFC 7643 / RFC 7644) as pure code: no HTTP, no SQL.
//!
//! Input from identity providers is parsed and normalised here, once: string booleans,
//! capitalised PATCH ops, `emails` sent as an object, `manager` as `{managerId}`, URN-qualified
//! and dotted keys. Handlers and storage only ever see the canonical forms this crate produces.

pub mod changes;
pub mod discovery;
pub mod error;
pub mod filter;
pub mod group;
pub mod list;
pub mod patch;
pub mod projection;
pub mod redact;
pub mod schema;
pub mod time;
pub mod user;

pub use error::{ScimError, ScimType};
