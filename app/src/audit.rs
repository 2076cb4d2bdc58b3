//! The audit log: who did what in the console or on the command line (tokens, settings,
//! logins, admins), newest first.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::{page_data, LocalTime, Moment, NewerOlder};

#[cfg(feature = "ssr")]
const PAGE: i64 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLine {
    pub id: i64,
    pub at: Moment,
    pub actor: String,
    pub action: String,
    pub what: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditView {
    pub lines: Vec<AuditLine>,
    pub older: Option<i64>,
}

/// An audit action in words.
#[cfg(feature = "ssr")]
fn describe(action: &str, integration: Option<&str>, detail: Option<&str>) -> String {
    let integration = crate::ssr::kind_of(integration.map(str::to_owned))
        .map_or("an integration", model::IntegrationKind::label);
    let detail = detail.unwrap_or_default();
    match action {
        "token.created" => format!("Created the {integration} provisioning token"),
        "token.reset" => format!("Reset the {integration} provisioning token"),
        "settings.delete_keeps_record" => format!("Set {integration} deletes to keep a record"),
        "settings.delete_erases" => format!("Set {integration} deletes to erase"),
        // Settings from before deletes always removed the resource from SCIM.
        "settings.delete_removes" => format!("Set {integration} deletes to remove users"),
        "settings.delete_deactivates" => format!("Set {integration} deletes to deactivate users"),
        "login" if detail.is_empty() => "Logged in".into(),
        "login" => format!("Logged in {detail}"),
        "login.failed" => "Failed login (wrong password)".into(),
        "login.locked" => format!("Locked out of logging in {detail} after wrong passwords"),
        "admin.unlocked" => format!("Unlocked {detail} after failed logins"),
        "login.step_up" => "Confirmed their password for a sensitive action".into(),
        "password.changed" => "Changed their password (their other sessions ended)".into(),
        "session.ended" => "Ended one of their sessions".into(),
        "sessions.ended" => "Ended all their other sessions".into(),
        "admin.disabled" => format!("Disabled admin {detail}"),
        "admin.enabled" => format!("Enabled admin {detail}"),
        "admin.removed" => format!("Removed admin {detail}"),
        "factor.enrolled" => format!("Set up a second factor: {detail}"),
        "factor.removed" => format!("Removed the second factor {detail}"),
        "factors.reset" => format!("Removed every second factor of {detail}"),
        "recovery_code.used" => format!("Used a recovery code ({detail})"),
        "policy.second_factor_required" => "Required a second factor of every admin".into(),
        "policy.second_factor_optional" => "Made second factors optional".into(),
        "admin.created" => format!("Created admin {detail}"),
        "admin.added" => format!("Added admin {detail}"),
        "alert.destination_added" => format!("Added the alert destination {detail}"),
        "alert.destination_removed" => format!("Removed the alert destination {detail}"),
        "alert.rule_set" => format!("Set the alert rule {detail}"),
        "alert.test_requested" => format!("Sent a test alert to {detail}"),
        "alert.sent" => format!("Delivered an alert {detail}"),
        "alert.failed" => format!("Could not deliver an alert {detail}"),
        "alert.given_up" => format!("Gave up delivering an alert {detail}"),
        other => other.to_owned(),
    }
}

#[server]
pub async fn audit_log(before: Option<i64>) -> Result<AuditView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let mut rows = state
        .store
        .audit_events(&admin.organisation_id, before, PAGE + 1)
        .await
        .map_err(console_error)?;
    let older = crate::ssr::newest_first_page(&mut rows, PAGE, |r| r.id);
    Ok(AuditView {
        older,
        lines: rows
            .into_iter()
            .map(|r| AuditLine {
                id: r.id,
                at: domain::time::moment(r.at),
                what: describe(
                    &r.action,
                    r.integration_kind.as_deref(),
                    r.detail.as_deref(),
                ),
                actor: r.actor,
                action: r.action,
            })
            .collect(),
    })
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let before = RwSignal::new(None::<i64>);
    let data = page_data(move || before.get(), audit_log);
    view! {
        <Title text="Audit log"/>
        <h1>"Audit log"</h1>
        <p class="muted">"Token changes, settings changes, logins and new admins, newest first."</p>
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(v) if v.lines.is_empty() => view! { <p class="empty">"Nothing recorded yet."</p> }.into_any(),
                    Ok(v) => {
                        let older = v.older;
                        view! {
                            <div class="table-scroll">
                                <table class="grid" data-testid="audit">
                                    <thead><tr>
                                        <th scope="col">"Time"</th>
                                        <th scope="col">"Who"</th>
                                        <th scope="col">"What"</th>
                                    </tr></thead>
                                    <tbody>
                                        {v.lines.into_iter().map(|l| view! {
                                            <tr data-action=l.action>
                                                <td><LocalTime moment=l.at/></td>
                                                <td>{l.actor}</td>
                                                <td>{l.what}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            </div>
                            <NewerOlder before older noun="events"/>
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
