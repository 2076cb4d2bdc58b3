//! The dashboard: the organisation at a glance.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use serde::{Deserialize, Serialize};

use crate::components::{LocalTime, Moment};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    pub users: i64,
    pub groups: i64,
    pub onelogin_has_token: bool,
    pub onelogin_last_sync: Option<Moment>,
}

#[server]
pub async fn dashboard() -> Result<DashboardView, ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    use domain::integrations::IntegrationKind;
    let (state, admin) = require_admin().await?;
    let org = &admin.organisation_id;
    let status = crate::integrations::ssr_status(&state, org, IntegrationKind::OneLogin).await?;
    Ok(DashboardView {
        users: state.store.count_users(org).await.map_err(console_error)?,
        groups: state.store.count_groups(org).await.map_err(console_error)?,
        onelogin_has_token: status.has_token,
        onelogin_last_sync: status.last_sync_at.map(Moment::new),
    })
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard());
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(d) => view! {
                        <div class="tiles">
                            <section class="card tile">
                                <h2>"Users"</h2>
                                <p class="figure">{d.users}</p>
                            </section>
                            <section class="card tile">
                                <h2>"Groups"</h2>
                                <p class="figure">{d.groups}</p>
                            </section>
                            <section class="card tile">
                                <h2>"OneLogin"</h2>
                                {if d.onelogin_has_token {
                                    view! {
                                        <p>"Last sync: "
                                            {match d.onelogin_last_sync {
                                                Some(m) => view! { <LocalTime moment=m/> }.into_any(),
                                                None => "Never".into_any(),
                                            }}
                                        </p>
                                    }.into_any()
                                } else {
                                    view! {
                                        <p>"Not connected. "
                                            <A href="/settings/directory-integrations/onelogin">"Set it up"</A>
                                        </p>
                                    }.into_any()
                                }}
                            </section>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
