//! The dashboard: the organisation at a glance, and each integration's provisioning health.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use serde::{Deserialize, Serialize};

use crate::components::{page_data, LocalTime, Moment};
use model::IntegrationKind;

use crate::integrations::{StaleToken, StaleTokenWarning};

/// One integration's health over the last 24 hours.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationHealth {
    pub kind: IntegrationKind,
    pub has_token: bool,
    pub last_sync: Option<Moment>,
    pub requests_24h: i64,
    pub failures_24h: i64,
    pub last_error: Option<(Moment, String)>,
    pub users_active: i64,
    pub users_deactivated: i64,
    /// Users this integration deleted, of whom the console keeps a record.
    pub users_deleted: i64,
    pub stale_token: Option<StaleToken>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    pub users: i64,
    /// Records of deleted users, counted apart: SCIM no longer sees them.
    pub deleted_users: i64,
    pub groups: i64,
    pub integrations: Vec<IntegrationHealth>,
}

/// The dashboard's figures, all from counts kept as provisioning and the activity log write
/// (a few rows whatever the organisation's size).
#[server]
pub async fn dashboard() -> Result<DashboardView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let figures = state
        .store
        .dashboard_figures(&admin.organisation_id, domain::time::now_ms())
        .await
        .map_err(console_error)?;
    let mut integrations = Vec::new();
    for &kind in IntegrationKind::ALL {
        let found = figures
            .integrations
            .iter()
            .find(|i| i.kind == kind.as_str())
            .cloned()
            .unwrap_or_default();
        // The latest successful request may not be written yet.
        let last_sync = found
            .last_sync_at
            .max(state.last_sync.pending(&found.integration_id));
        // Requests with a retired token are written within a second (`RetiredTokenUses`).
        let stale_token = if found.has_token {
            domain::integrations::stale_token(&state.store, &found.integration_id, last_sync)
                .await
                .map_err(console_error)?
                .map(StaleToken::from)
        } else {
            None
        };
        integrations.push(IntegrationHealth {
            kind,
            has_token: found.has_token,
            last_sync: last_sync.map(domain::time::moment),
            requests_24h: found.requests,
            failures_24h: found.failures,
            last_error: found
                .last_error
                .map(|(at, e)| (domain::time::moment(at), e)),
            users_active: found.users_active,
            users_deactivated: found.users_deactivated,
            users_deleted: found.users_deleted,
            stale_token,
        });
    }
    Ok(DashboardView {
        users: figures.users,
        deleted_users: figures.deleted_users,
        groups: figures.groups,
        integrations,
    })
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = page_data(|| (), |_| dashboard());
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => {
                        let (connected, other): (Vec<_>, Vec<_>) =
                            d.integrations.into_iter().partition(|i| i.has_token || i.users_active + i.users_deactivated + i.users_deleted > 0);
                        view! {
                            <div class="tiles">
                                <section class="card tile">
                                    <h2>"Users"</h2>
                                    <p class="figure">{d.users}</p>
                                    {(d.deleted_users > 0).then(|| view! {
                                        <p class="muted" data-testid="deleted-users">
                                            {format!("and {} deleted (kept as records)", d.deleted_users)}
                                        </p>
                                    })}
                                    <A href="/users">"View users"</A>
                                </section>
                                <section class="card tile">
                                    <h2>"Groups"</h2>
                                    <p class="figure">{d.groups}</p>
                                    <A href="/groups">"View groups"</A>
                                </section>
                            </div>
                            <h2 class="section-title">"Provisioning"</h2>
                            {connected.is_empty().then(|| view! {
                                <p class="empty">"No identity provider is connected yet. "
                                    <A href="/settings/directory-integrations/onelogin">"Connect one"</A>"."</p>
                            })}
                            <div class="tiles">
                                {connected.into_iter().map(|i| view! { <Health i/> }).collect_view()}
                            </div>
                            {(!other.is_empty()).then(|| view! {
                                <p class="muted">"Not connected: "
                                    {other.into_iter().map(|i| {
                                        view! { <A href=i.kind.path()>{i.kind.label()}</A>" " }
                                    }).collect_view()}
                                </p>
                            })}
                        }.into_any()
                    }
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Health(i: IntegrationHealth) -> impl IntoView {
    let healthy = i.failures_24h == 0;
    let label = i.kind.label();
    view! {
        <section class="card tile health" data-kind=i.kind.as_str()>
            <h3>
                <A href=i.kind.path()>{label}</A>
                <span class=if healthy { "status good" } else { "status bad" }>
                    {if healthy { "Healthy" } else { "Failures" }}
                </span>
            </h3>
            <dl class="facts">
                <dt>"Last sync"</dt>
                <dd>{match i.last_sync {
                    Some(m) => view! { <LocalTime moment=m/> }.into_any(),
                    None => "Never".into_any(),
                }}</dd>
                <dt>"Last 24 hours"</dt>
                <dd data-testid="requests-24h">{format!("{} requests, {} failed", i.requests_24h, i.failures_24h)}</dd>
                <dt>"Users"</dt>
                <dd>{format!("{} active, {} deactivated", i.users_active, i.users_deactivated)}</dd>
                {(i.users_deleted > 0).then(|| view! {
                    <dt>"Deleted"</dt>
                    <dd data-testid="users-deleted">{match i.users_deleted {
                        1 => "1 user (kept as a record)".to_owned(),
                        n => format!("{n} users (kept as records)"),
                    }}</dd>
                })}
                {i.last_error.map(|(at, message)| view! {
                    <dt>"Last error"</dt>
                    <dd class="error-detail"><LocalTime moment=at/>": "{message}</dd>
                })}
            </dl>
            {i.stale_token.map(|stale| view! { <StaleTokenWarning label stale/> })}
            <A href="/activity">"Sync activity"</A>
        </section>
    }
}
