//! The administrator console: the Leptos application (pages, components) and the server
//! functions behind it. Server-only code (sessions, storage) sits behind the `ssr` feature.

pub mod account;
pub mod activity;
pub mod admins;
pub mod alerts;
pub mod audit;
pub mod auth;
mod components;
pub mod dashboard;
pub mod groups;
mod history;
pub mod integrations;
mod layout;
#[cfg(feature = "ssr")]
pub mod ssr;
pub mod users;
mod webauthn;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::{path, Lazy, LazyRoute, SsrMode};

use account::AccountPage;
use activity::ActivityPage;
use admins::AdminsPage;
use alerts::AlertsPage;
use audit::AuditPage;
use auth::LoginPage;
use dashboard::DashboardPage;
use groups::{GroupPage, GroupsPage};
use integrations::{IntegrationPage, OneLoginSetup};
use users::{UserPage, UsersPage};

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
                <Route path=path!("/login") view={Lazy::<Login>::new()} ssr=SsrMode::Async/>
                <ParentRoute path=path!("") view=layout::ConsoleLayout ssr=SsrMode::Async>
                    <Route path=path!("") view={Lazy::<Dashboard>::new()}/>
                    <Route path=path!("/users") view={Lazy::<Users>::new()}/>
                    <Route path=path!("/users/:id") view={Lazy::<User>::new()}/>
                    <Route path=path!("/groups") view={Lazy::<Groups>::new()}/>
                    <Route path=path!("/groups/:id") view={Lazy::<Group>::new()}/>
                    <Route
                        path=path!("/settings/directory-integrations")
                        view=|| view! { <Redirect path=model::IntegrationKind::ALL[0].path()/> }
                    />
                    <Route
                        path=path!("/settings/directory-integrations/:kind")
                        view={Lazy::<Integration>::new()}
                    />
                    <Route path=path!("/activity") view={Lazy::<Activity>::new()}/>
                    <Route path=path!("/audit") view={Lazy::<Audit>::new()}/>
                    <Route path=path!("/settings/admins") view={Lazy::<Admins>::new()}/>
                    <Route path=path!("/settings/alerts") view={Lazy::<Alerts>::new()}/>
                    <Route path=path!("/account") view={Lazy::<Account>::new()}/>
                    <Route
                        path=path!("/settings/directory-integrations/onelogin/setup")
                        view={Lazy::<OneLoginSetupGuide>::new()}
                    />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// Declares the pages' routes as lazy ones, in groups. Split (the `split` feature), each
/// group's code is a wasm module of its own, which the browser fetches when it first shows one
/// of its pages, so that the login page loads the framework, the console's frame and itself
/// only; a page the server renders names the modules it needs for the browser to fetch beside
/// the main one. Unsplit, the pages are in the one wasm, as plain routes would be. Groups
/// rather than a module per page: the splitter makes a module of the code each set of pages
/// shares, and a module per page meant up to 86 files per page.
macro_rules! lazy_pages {
    ($($group:ident { $($route:ident => $page:ident),+ $(,)? })+) => {$(
        mod $group {
            use super::*;

            #[derive(Clone, Copy)]
            pub enum Page {
                $($route),+
            }

            // The group's name names its module. The server always declares it, to name the
            // modules a page needs.
            #[cfg_attr(any(feature = "ssr", feature = "split"), leptos::lazy($group))]
            pub async fn show(page: Page) -> AnyView {
                match page {
                    $(Page::$route => view! { <$page/> }.into_any()),+
                }
            }
        }

        $(
            struct $route;

            impl LazyRoute for $route {
                fn data() -> Self {
                    Self
                }

                async fn view(_route: Self) -> AnyView {
                    $group::show($group::Page::$route).await
                }

                // Fetches the group's module before the page is shown or hydrated: hydration
                // must find the page's code at hand, or it renders the page a second time.
                async fn preload() {
                    #[cfg(feature = "split")]
                    $group::__preload_show().await;
                }
            }
        )+
    )+};
}

lazy_pages! {
    // Where a visit starts.
    entry_pages {
        Login => LoginPage,
    }
    // The directory, its integrations and logs, and the organisation's admins.
    console_pages {
        Dashboard => DashboardPage,
        Users => UsersPage,
        User => UserPage,
        Groups => GroupsPage,
        Group => GroupPage,
        Integration => IntegrationPage,
        OneLoginSetupGuide => OneLoginSetup,
        Activity => ActivityPage,
        Audit => AuditPage,
        Admins => AdminsPage,
        Alerts => AlertsPage,
    }
    // One's own account: password, sessions, and setting up second factors.
    account_pages {
        Account => AccountPage,
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
