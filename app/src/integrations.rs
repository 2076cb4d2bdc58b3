//! Settings > Directory integrations: one tab per identity provider (OneLogin, Okta,
//! Microsoft Entra ID, any other SCIM client). Each tab gives the SCIM base URL, creates and
//! resets that integration's own provisioning token (shown once), shows when it last synced,
//! sets what its DELETE does, and says how to set the IdP up.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;
use model::{DeleteMode, IntegrationKind};
use serde::{Deserialize, Serialize};

use crate::components::{needs_step_up, page_data, CopyButton, LocalTime, Moment, StepUp};

/// What an integration tab shows. The token itself is never part of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationView {
    pub scim_url: String,
    pub has_token: bool,
    pub last_sync: Option<Moment>,
    /// Whether the console erases what the IdP deletes (otherwise it keeps a record).
    pub delete_erases: bool,
    pub stale_token: Option<StaleToken>,
}

/// The IdP still sends a token that was reset: the requests refused for it since, and the
/// newest of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleToken {
    pub requests: i64,
    pub last: Moment,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

#[cfg(feature = "ssr")]
impl From<domain::integrations::StaleTokenUse> for StaleToken {
    fn from(s: domain::integrations::StaleTokenUse) -> Self {
        Self {
            requests: s.requests,
            last: domain::time::moment(s.last_at),
            address: s.last_address,
            user_agent: s.last_user_agent,
        }
    }
}

/// Tells the admin that `label` still sends the token they reset, and what to do.
#[component]
pub fn StaleTokenWarning(label: &'static str, stale: StaleToken) -> impl IntoView {
    let requests = match stale.requests {
        1 => "1 request".to_owned(),
        n => format!("{n} requests"),
    };
    view! {
        <div class="stale-token" role="alert" data-testid="stale-token">
            <p>
                <strong>{format!("{label} is still sending the old token: ")}</strong>
                {format!("{requests} since the reset, last at ")}
                <LocalTime moment=stale.last/>
                {stale.address.map(|a| format!(" from {a}"))}
                {stale.user_agent.map(|ua| format!(" ({ua})"))}
                "."
            </p>
            <p>{format!("Paste the new token into {label}.")}</p>
        </div>
    }
}

/// Status of an integration, with a last sync not yet written to the database included.
#[cfg(feature = "ssr")]
async fn ssr_status(
    state: &crate::ssr::ConsoleState,
    organisation_id: &str,
    kind: IntegrationKind,
) -> Result<domain::integrations::IntegrationStatus, ServerFnError> {
    let mut status = domain::integrations::status(&state.store, organisation_id, kind)
        .await
        .map_err(crate::ssr::console_error)?;
    if let Some(id) = &status.integration_id {
        status.last_sync_at = status.last_sync_at.max(state.last_sync.pending(id));
        let last_sync_at = status.last_sync_at;
        status.stale_token = status.stale_token.filter(|s| s.after(last_sync_at));
    }
    Ok(status)
}

#[server]
pub async fn integration(kind: IntegrationKind) -> Result<IntegrationView, ServerFnError> {
    let (state, admin) = crate::ssr::require_admin().await?;
    let status = ssr_status(&state, &admin.organisation_id, kind).await?;
    Ok(IntegrationView {
        scim_url: state.scim_base_url.clone(),
        has_token: status.has_token,
        last_sync: status.last_sync_at.map(domain::time::moment),
        delete_erases: status.delete_mode == DeleteMode::Erase,
        stale_token: status.stale_token.map(StaleToken::from),
    })
}

/// Sets what the console keeps of what the IdP deletes: a record (the default) or nothing.
/// Either way SCIM no longer sees it.
#[server]
pub async fn set_delete_mode(kind: IntegrationKind, mode: DeleteMode) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    let actor = domain::integrations::Actor::Admin {
        id: admin.id,
        email: admin.email,
    };
    domain::integrations::set_delete_mode(&state.store, &admin.organisation_id, kind, mode, &actor)
        .await
        .map_err(console_error)
}

/// Creates (`reset`: replaces) the integration's provisioning token and returns it: the only
/// time it leaves the server. A reset token stops working now.
#[cfg(feature = "ssr")]
async fn issue_token(kind: IntegrationKind, reset: bool) -> Result<String, ServerFnError> {
    use crate::ssr::{console_error, no_store, require_recent_login};
    let (state, admin) = require_recent_login().await?;
    no_store();
    let actor = domain::integrations::Actor::Admin {
        id: admin.id,
        email: admin.email,
    };
    let (store, org) = (&state.store, &admin.organisation_id);
    let token = if reset {
        domain::integrations::reset_token(store, org, kind, &actor).await
    } else {
        domain::integrations::create_token(store, org, kind, &actor).await
    };
    Ok(token.map_err(console_error)?.into_plaintext())
}

/// Creates the first provisioning token (see `issue_token`).
#[server]
pub async fn create_token(kind: IntegrationKind) -> Result<String, ServerFnError> {
    issue_token(kind, false).await
}

/// Replaces the provisioning token (see `issue_token`).
#[server]
pub async fn reset_token(kind: IntegrationKind) -> Result<String, ServerFnError> {
    issue_token(kind, true).await
}

#[component]
fn Tabs() -> impl IntoView {
    view! {
        <h1>"Directory integrations"</h1>
        <nav class="tabs" aria-label="Identity providers">
            {IntegrationKind::ALL.iter().map(|k| view! { <A href=k.path()>{k.label()}</A> }).collect_view()}
        </nav>
    }
}

/// `/settings/directory-integrations/:kind`: the tab of the kind the path names.
#[component]
pub fn IntegrationPage() -> impl IntoView {
    let params = use_params_map();
    let kind = move || {
        params.with(|p| {
            p.get("kind")
                .and_then(|k| k.parse::<IntegrationKind>().ok())
        })
    };
    move || match kind() {
        Some(kind) => view! { <IntegrationTab kind/> }.into_any(),
        None => view! {
            <Title text="Directory integrations"/>
            <Tabs/>
            <p class="not-found">"Page not found."</p>
        }
        .into_any(),
    }
}

#[component]
fn IntegrationTab(kind: IntegrationKind) -> impl IntoView {
    let label = kind.label();
    let create = ServerAction::<CreateToken>::new();
    let reset = ServerAction::<ResetToken>::new();
    let delete_mode = ServerAction::<SetDeleteMode>::new();
    let view_data = page_data(
        move || {
            (
                create.version().get(),
                reset.version().get(),
                delete_mode.version().get(),
            )
        },
        move |_| integration(kind),
    );
    // The token lives only in this component's memory: leaving the tab or reloading drops it.
    let shown_token = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(false);
    Effect::new(move |_| {
        for action in [create.value().get(), reset.value().get()] {
            if let Some(Ok(token)) = action {
                shown_token.set(Some(token));
            }
        }
    });
    let busy = move || create.pending().get() || reset.pending().get();
    // Creating or resetting the token needs a recent login: the refused action runs again
    // once the admin confirms their password.
    let step_up_create = Signal::derive(move || !busy() && needs_step_up(&create.value().get()));
    let step_up_reset = Signal::derive(move || !busy() && needs_step_up(&reset.value().get()));
    let retry = Callback::new(move |()| {
        if step_up_create.get_untracked() {
            create.dispatch(CreateToken { kind });
        } else if step_up_reset.get_untracked() {
            reset.dispatch(ResetToken { kind });
        }
    });
    let action_error = move || {
        [create.value().get(), reset.value().get()]
            .into_iter()
            .flatten()
            .find_map(|r| r.err())
            .or_else(|| delete_mode.value().get().and_then(|r| r.err()))
            .map(|e| crate::error_message(&e))
            .filter(|m| m != crate::STEP_UP)
    };

    let token_area = move |has_token: bool| {
        if let Some(token) = shown_token.get() {
            let token_signal = Signal::derive(move || shown_token.get().unwrap_or_default());
            view! {
                <div class="token-once" role="status">
                    <div class="copy-field">
                        <code data-testid="token">{token}</code>
                        <CopyButton text=token_signal label="Copy provisioning token"/>
                    </div>
                    <p class="warning">
                        {format!("Copy this token now and paste it into {label}. It will not be shown again: ")}
                        "leaving this tab or reloading the page hides it for ever."
                    </p>
                </div>
            }
            .into_any()
        } else if !has_token {
            view! {
                <button type="button" class="primary" disabled=busy
                    on:click=move |_| { create.dispatch(CreateToken { kind }); }>
                    "Create provisioning token"
                </button>
            }
            .into_any()
        } else if confirming.get() {
            view! {
                <div class="confirm" role="alertdialog" aria-labelledby="reset-warning">
                    <p id="reset-warning">
                        "Resetting creates a new token and stops the current one at once. "
                        {format!("{label} (or any other process) still using the old token will fail until you paste the new one.")}
                    </p>
                    <button type="button" class="danger" disabled=busy
                        on:click=move |_| {
                            confirming.set(false);
                            reset.dispatch(ResetToken { kind });
                        }>
                        "Yes, reset the token"
                    </button>
                    <button type="button" on:click=move |_| confirming.set(false)>"Cancel"</button>
                </div>
            }
            .into_any()
        } else {
            view! {
                <p>"You've already created your provisioning token. If you don't know it, click to reset."</p>
                <button type="button" class="danger" disabled=busy on:click=move |_| confirming.set(true)>
                    "Reset provisioning token"
                </button>
            }
            .into_any()
        }
    };

    view! {
        <Title text=format!("{label} · Directory integrations")/>
        <Tabs/>
        <section class="card integration" data-kind=kind.as_str()>
            <h2>{label}</h2>
            <p>
                {format!("Automatically provision users from {label} by establishing a SCIM connection. ")}
                {format!("Copy the URL and bearer token and continue setup in {label}.")}
            </p>
            {if kind.has_setup_page() {
                view! { <p><A href=format!("{}/setup", kind.path())>"Setup instructions"</A></p> }.into_any()
            } else {
                view! {
                    <details class="setup">
                        <summary>{format!("Setup instructions for {label}")}</summary>
                        <SetupSteps kind/>
                    </details>
                }.into_any()
            }}
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match view_data.await {
                        Ok(v) => {
                            let url = v.scim_url.clone();
                            view! {
                                <h3 class="section-title">"Connection"</h3>
                                <dl class="connection">
                                    <dt>"URL"</dt>
                                    <dd>
                                        <div class="copy-field">
                                            <code data-testid="scim-url">{v.scim_url.clone()}</code>
                                            <CopyButton text=Signal::derive(move || url.clone()) label="Copy SCIM base URL"/>
                                        </div>
                                    </dd>
                                    <dt>"Token"</dt>
                                    <dd data-testid="token-area">{move || token_area(v.has_token)}</dd>
                                    <dt>"Last Sync"</dt>
                                    <dd data-testid="last-sync">
                                        {match v.last_sync.clone() {
                                            Some(m) => view! { <LocalTime moment=m/> }.into_any(),
                                            None => "Never".into_any(),
                                        }}
                                    </dd>
                                </dl>
                                {v.stale_token.clone().map(|stale| view! { <StaleTokenWarning label stale/> })}
                                {v.has_token.then(|| view! {
                                    <DeleteBehaviour kind erases=v.delete_erases action=delete_mode/>
                                })}
                            }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
            <StepUp needed=Signal::derive(move || step_up_create.get() || step_up_reset.get()) retry/>
            {move || action_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}

/// What the console keeps when the IdP deletes a user or group: a record (default) or
/// nothing. The IdP itself sees it gone either way; deactivating is a separate IdP action.
#[component]
fn DeleteBehaviour(
    kind: IntegrationKind,
    erases: bool,
    action: ServerAction<SetDeleteMode>,
) -> impl IntoView {
    let choose = move |mode: DeleteMode| {
        action.dispatch(SetDeleteMode { kind, mode });
    };
    let idp = kind.label();
    view! {
        <fieldset class="setting" data-testid="delete-behaviour">
            <legend>{format!("When {idp} deletes a user or group")}</legend>
            <p class="hint">{format!(
                "{idp} no longer sees it either way, and may create the same user name again. \
                 A user {idp} deactivates stays listed and can be reactivated."
            )}</p>
            <label>
                <input type="radio" name="delete-mode" value=DeleteMode::Keep.as_str() checked=!erases
                    disabled=move || action.pending().get()
                    on:change=move |_| choose(DeleteMode::Keep)/>
                " Keep a record (recommended): the console shows who was deleted, when and by whom, with their attributes, groups and SCIM history"
            </label>
            <label>
                <input type="radio" name="delete-mode" value=DeleteMode::Erase.as_str() checked=erases
                    disabled=move || action.pending().get()
                    on:change=move |_| choose(DeleteMode::Erase)/>
                " Erase: remove their attributes and memberships; the activity log keeps only the request lines"
            </label>
        </fieldset>
    }
}

/// Steps 2 and 3 of the setup, for the admin configuring OneLogin.
#[component]
pub fn OneLoginSetup() -> impl IntoView {
    view! {
        <Title text="OneLogin setup · Directory integrations"/>
        <Tabs/>
        <section class="card">
            <h2>"Set up SCIM provisioning with OneLogin"</h2>
            <SetupSteps kind=IntegrationKind::OneLogin/>
            <p class="muted">"If the token is lost, reset it on the OneLogin tab and paste the new one into OneLogin: the old token stops working at once."</p>
            <p><A href=IntegrationKind::OneLogin.path()>"Back to OneLogin"</A></p>
        </section>
    }
}

/// How to set each IdP up: on its tab, or on a page of its own (OneLogin). A new kind
/// needs its steps here.
#[component]
fn SetupSteps(kind: IntegrationKind) -> impl IntoView {
    match kind {
        IntegrationKind::OneLogin => view! {
            <ol class="steps">
                    <li>"On the OneLogin tab, copy the URL and create (or reset) the provisioning token. Keep both in a text editor."</li>
                    <li>"In the OneLogin admin portal, go to " <strong>"Applications > Add App"</strong>
                        ", search for " <strong>"SCIM Provisioner with SAML (SCIM v2 Enterprise)"</strong>
                        ", name it (for example \"Directory Sync\") and click " <strong>"Save"</strong>"."</li>
                    <li>"Open the app's " <strong>"Configuration"</strong> " tab. Paste the URL into "
                        <strong>"SCIM Base URL"</strong> " and the token into " <strong>"SCIM Bearer Token"</strong>
                        ". Under " <strong>"API Status"</strong> ", click " <strong>"Enable"</strong>"."</li>
                    <li>"Open the " <strong>"Provisioning"</strong> " tab, choose whether creating, deleting and updating users needs admin approval, check "
                        <strong>"Enable provisioning"</strong> " and save."</li>
                    <li>"Back here, " <strong>"Last Sync"</strong> " shows when OneLogin last reached this service."</li>
                </ol>
        }.into_any(),
        IntegrationKind::Okta => view! {
            <ol class="steps">
                <li>"Copy the URL and create (or reset) the provisioning token above."</li>
                <li>"In the Okta Admin Console, open your app integration (or create one with "
                    <strong>"SCIM provisioning"</strong>"), then " <strong>"General > Provisioning: SCIM"</strong>"."</li>
                <li>"On " <strong>"Provisioning > Integration"</strong> ", paste the URL into "
                    <strong>"SCIM connector base URL"</strong> ", set " <strong>"Unique identifier field for users"</strong>
                    " to " <code>"userName"</code> ", choose " <strong>"HTTP Header"</strong>
                    " authentication and paste the token as the Bearer token. Click " <strong>"Test Connector Configuration"</strong> ", then Save."</li>
                <li>"On " <strong>"Provisioning > To App"</strong> ", enable Create Users, Update User Attributes and Deactivate Users."</li>
            </ol>
        }.into_any(),
        IntegrationKind::Entra => view! {
            <ol class="steps">
                <li>"Copy the URL and create (or reset) the provisioning token above."</li>
                <li>"In the Microsoft Entra admin center, open " <strong>"Enterprise applications"</strong>
                    ", create a " <strong>"non-gallery application"</strong> " and open its " <strong>"Provisioning"</strong> " page."</li>
                <li>"Set " <strong>"Provisioning Mode"</strong> " to Automatic. Paste the URL into " <strong>"Tenant URL"</strong>
                    " and the token into " <strong>"Secret Token"</strong> ", click " <strong>"Test Connection"</strong> " and Save."</li>
                <li>"Assign users and groups to the application and set " <strong>"Provisioning Status"</strong> " to On. Entra syncs every 40 minutes."</li>
            </ol>
        }.into_any(),
        IntegrationKind::Generic => view! {
            <ol class="steps">
                <li>"Copy the URL and create (or reset) the provisioning token above."</li>
                <li>"Configure your SCIM 2.0 client with the URL as its base URL and the token as an "
                    <code>"Authorization: Bearer"</code> " header."</li>
                <li>"The service supports /Users and /Groups with filtering, PATCH and bulk-free paging; "
                    "/ServiceProviderConfig, /Schemas and /ResourceTypes describe it."</li>
            </ol>
        }.into_any(),
    }
}
