//! The console frame: left navigation and the page on the right. Every page inside it
//! requires a logged-in admin; without one it redirects to the login page.

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect, A};
use leptos_router::hooks::use_location;
use serde::{Deserialize, Serialize};

use crate::auth::Logout;
use crate::components::page_data;

/// What the navigation shows about the logged-in admin's organisation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NavSummary {
    pub admin_email: String,
    pub organisation_name: String,
    pub users: i64,
    pub groups: i64,
    /// The organisation requires a second factor the admin has not set up: every page but
    /// their Account page sends them there.
    pub must_enrol: bool,
}

/// The logged-in admin's summary, or `None` when nobody is logged in.
#[server]
pub async fn console_summary() -> Result<Option<NavSummary>, ServerFnError> {
    use crate::ssr::{console_error, session, state, ADMIN_ID};
    let state = state()?;
    let Some(id) = session()
        .await?
        .get::<String>(ADMIN_ID)
        .await
        .ok()
        .flatten()
    else {
        return Ok(None);
    };
    let Some(admin) = domain::accounts::admin(&state.store, &id)
        .await
        .map_err(console_error)?
    else {
        return Ok(None);
    };
    let store = &state.store;
    let organisation = store
        .organisation(&admin.organisation_id)
        .await
        .map_err(console_error)?;
    Ok(Some(NavSummary {
        must_enrol: admin.must_enrol,
        admin_email: admin.email,
        organisation_name: organisation.map(|o| o.name).unwrap_or_default(),
        users: store
            .count_users(&admin.organisation_id)
            .await
            .map_err(console_error)?,
        groups: store
            .count_groups(&admin.organisation_id)
            .await
            .map_err(console_error)?,
    }))
}

/// The frame is built once; only the navigation's content follows the summary, so a refetch
/// never tears down the page in the outlet while it is loading.
#[component]
pub fn ConsoleLayout() -> impl IntoView {
    let location = use_location();
    // Refetched on every navigation, so the counts stay current.
    let summary = page_data(move || location.pathname.get(), |_| console_summary());
    view! {
        <div class="console">
            <nav class="sidebar" aria-label="Main">
                <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match summary.await {
                            Ok(Some(s)) if s.must_enrol && location.pathname.get_untracked() != "/account" => {
                                view! { <Redirect path="/account"/> }.into_any()
                            }
                            Ok(Some(s)) => view! { <Navigation summary=s/> }.into_any(),
                            Ok(None) => view! { <Redirect path="/login"/> }.into_any(),
                            Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                        }
                    })}
                </Transition>
            </nav>
            <main class="content">
                <Outlet/>
            </main>
        </div>
    }
}

#[component]
fn Navigation(summary: NavSummary) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    view! {
        <div class="brand">
            <span class="product">"Directory Console"</span>
            <span class="org">{summary.organisation_name}</span>
        </div>
        <ul>
            <li><A href="/" exact=true>"Dashboard"</A></li>
            <li><A href="/users">"Users (" {summary.users} ")"</A></li>
            <li><A href="/groups">"Groups (" {summary.groups} ")"</A></li>
            <li><A href="/activity">"Sync activity"</A></li>
            <li><A href="/audit">"Audit log"</A></li>
            <li class="section">"Settings"</li>
            <li class="sub"><A href="/settings/directory-integrations">"Directory integrations"</A></li>
            <li class="sub"><A href="/settings/admins">"Admins"</A></li>
            <li class="sub"><A href="/settings/alerts">"Alerts"</A></li>
        </ul>
        <div class="who">
            <A href="/account">{summary.admin_email}</A>
            <ActionForm action=logout>
                <button type="submit" class="link">"Log out"</button>
            </ActionForm>
        </div>
    }
}
