//! The directory-integration domain: organisations and their admins, directory integrations
//! with their provisioning tokens and last sync, and the users identity providers provision.
//!
//! [`store`] holds every SQL statement; the other modules are the operations the console and
//! the SCIM API call, and never see a backend. [`deadline`] carries a request's deadline and
//! organisation to the store.

pub mod accounts;
pub mod activity;
pub mod alerts;
pub mod audit;
pub mod deadline;
pub mod directory;
pub mod error;
pub mod factors;
pub mod groups;
pub mod history;
pub mod integrations;
pub mod last_sync;
pub mod lockout;
pub mod metrics;
pub mod passkeys;
pub mod password;
pub mod provisioning;
pub mod scim_resource;
pub mod sessions;
pub mod store;
pub mod throttle;
pub mod time;
pub mod token;

pub use error::Error;
pub use store::Store;
