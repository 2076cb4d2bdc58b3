//! The administrator console: the Leptos application (pages, components) and the server
//! functions behind it. Server-only code (sessions, storage) sits behind the `ssr` feature.

pub mod account;
pub mod activity;
pub mod admins;
pub mod audit;
pub mod auth;
mod components;
pub mod dashboard;
pub mod groups;
pub mod integrations;
mod layout;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod users;
mod webauthn;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::{path, SsrMode};

/// The HTML document around the application, rendered on the server.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        ssr::content_security_policy();
        // Pages are per admin and may come to show a fresh token: no cache keeps them, and
        // `no-store` also keeps them out of the browser's back/forward cache.
        ssr::no_store();
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="data:,"/>
                <HashedStylesheet options=options.clone() id="leptos"/>
                // Renders only under `cargo leptos watch`: reloads the page after a rebuild.
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Title formatter=|page: String| format!("{page} · Directory Console")/>
        <Router>
            <Routes fallback=|| view! { <p class="not-found">"Page not found."</p> }>
                <Route path=path!("/login") view=auth::LoginPage ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=layout::ConsoleLayout ssr=SsrMode::Async>
                    <Route path=path!("") view=dashboard::DashboardPage/>
                    <Route path=path!("/users") view=users::UsersPage/>
                    <Route path=path!("/users/:id") view=users::UserPage/>
                    <Route path=path!("/groups") view=groups::GroupsPage/>
                    <Route path=path!("/groups/:id") view=groups::GroupPage/>
                    <Route
                        path=path!("/settings/directory-integrations")
                        view=|| view! { <Redirect path="/settings/directory-integrations/onelogin"/> }
                    />
                    <Route
                        path=path!("/settings/directory-integrations/onelogin")
                        view=integrations::OneLoginTab
                    />
                    <Route path=path!("/settings/directory-integrations/okta") view=integrations::OktaTab/>
                    <Route path=path!("/settings/directory-integrations/entra") view=integrations::EntraTab/>
                    <Route path=path!("/settings/directory-integrations/generic") view=integrations::GenericTab/>
                    <Route path=path!("/activity") view=activity::ActivityPage/>
                    <Route path=path!("/audit") view=audit::AuditPage/>
                    <Route path=path!("/settings/admins") view=admins::AdminsPage/>
                    <Route path=path!("/account") view=account::AccountPage/>
                    <Route
                        path=path!("/settings/directory-integrations/onelogin/setup")
                        view=integrations::OneLoginSetup
                    />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// The message of a sensitive action refused because the admin's last login is too old: the
/// console asks for their password (see [`components::StepUp`]) and tries the action again.
pub const STEP_UP: &str =
    "Confirm it is you: enter your password (and a code, if you use an authenticator) to continue.";

/// The message of every action refused to an admin whose organisation requires a second
/// factor they have not set up: the console sends them to their Account page.
pub const ENROL: &str =
    "Your organisation requires a second factor: set one up on your Account page.";

/// The message to show an admin for a failed server function call.
pub(crate) fn error_message(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(msg) => msg.clone(),
        _ => "The server could not be reached; check your connection and try again.".into(),
    }
}
