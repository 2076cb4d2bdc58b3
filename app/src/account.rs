//! The admin's own account (the navigation's email): their second factors, their password,
//! and the sessions they are logged in with, any of which they can end. An admin whose
//! organisation requires a second factor they lack may use this page, and only this page,
//! to set one up.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::{needs_step_up, page_data, LocalTime, Moment, StepUp};

/// One of the admin's sessions. `created` and `last_seen` are unknown for a session from
/// before sessions recorded them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub handle: String,
    pub created: Option<Moment>,
    pub last_seen: Option<Moment>,
    pub address: Option<String>,
    pub user_agent: Option<String>,
    /// The session this page is shown in.
    pub current: bool,
}

/// One of the admin's second factors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactorRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub added: Moment,
    pub last_used: Option<Moment>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub email: String,
    pub sessions: Vec<SessionRow>,
    pub factors: Vec<FactorRow>,
    pub recovery_codes_left: i64,
    /// The organisation requires a second factor and the admin has none yet.
    pub must_enrol: bool,
}

/// An authenticator app being set up: what the app needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpSetup {
    pub factor_id: String,
    pub secret: String,
    /// The QR code as a `data:` URL of an SVG image (allowed by the page's
    /// Content-Security-Policy, `img-src 'self' data:`).
    pub qr: String,
}

#[server]
pub async fn account() -> Result<AccountView, ServerFnError> {
    use crate::ssr::{console_error, current_session_handle, require_admin_enrolling};
    let (state, admin) = require_admin_enrolling().await?;
    let current = current_session_handle().await?;
    let sessions = domain::sessions::sessions(&state.store, &admin.id)
        .await
        .map_err(console_error)?;
    let (factors, recovery_codes_left) = domain::factors::factors(&state.store, &admin.id)
        .await
        .map_err(console_error)?;
    Ok(AccountView {
        must_enrol: admin.must_enrol,
        recovery_codes_left,
        factors: factors
            .into_iter()
            .map(|f| FactorRow {
                id: f.id,
                kind: f.kind,
                name: f.name,
                added: domain::time::moment(f.created_at),
                last_used: f.last_used_at.map(domain::time::moment),
            })
            .collect(),
        email: admin.email,
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                current: s.handle == current,
                created: s.info.as_ref().map(|i| domain::time::moment(i.created_at)),
                last_seen: s
                    .info
                    .as_ref()
                    .map(|i| domain::time::moment(i.last_seen_at)),
                address: s.info.as_ref().and_then(|i| i.address.clone()),
                user_agent: s.info.and_then(|i| i.user_agent),
                handle: s.handle,
            })
            .collect(),
    })
}

/// Starts setting up an authenticator app named `name` (needs a recent login).
#[server]
pub async fn start_totp(name: String) -> Result<TotpSetup, ServerFnError> {
    use crate::ssr::{console_error, no_store, require_recent_login_enrolling};
    let (state, admin) = require_recent_login_enrolling().await?;
    no_store();
    let setup = domain::factors::start_totp(&state.store, state.secret_key.as_ref(), &admin, &name)
        .await
        .map_err(console_error)?;
    Ok(TotpSetup {
        qr: setup.qr_data_url(),
        factor_id: setup.factor_id,
        secret: setup.secret,
    })
}

/// Confirms the authenticator app being set up with a code from it. The admin's first factor
/// comes with recovery codes, returned this once.
#[server]
pub async fn confirm_totp(factor_id: String, code: String) -> Result<Vec<String>, ServerFnError> {
    use crate::ssr::{console_error, no_store, require_admin_enrolling};
    let (state, admin) = require_admin_enrolling().await?;
    no_store();
    let codes = domain::factors::confirm_totp(
        &state.store,
        state.secret_key.as_ref(),
        &admin,
        &factor_id,
        &code,
    )
    .await
    .map_err(console_error)?;
    Ok(codes.unwrap_or_default())
}

/// The session key of a passkey registration in progress.
#[cfg(feature = "ssr")]
const REGISTRATION: &str = "passkey_registration";

/// Starts registering a passkey (needs a recent login): the challenge for the browser.
#[server]
pub async fn start_passkey_registration(
) -> Result<webauthn_rs_proto::CreationChallengeResponse, ServerFnError> {
    use crate::ssr::{console_error, require_recent_login_enrolling, session};
    let (state, admin) = require_recent_login_enrolling().await?;
    let (challenge, registration) = state
        .passkeys
        .start_registration(&state.store, state.secret_key.as_ref(), &admin)
        .await
        .map_err(console_error)?;
    session()
        .await?
        .insert(REGISTRATION, registration)
        .await
        .map_err(crate::ssr::session_error)?;
    Ok(challenge)
}

/// Stores the passkey the browser created, named `name`. The admin's first factor comes
/// with recovery codes, returned this once.
#[server(input = leptos::server_fn::codec::Json)]
pub async fn finish_passkey_registration(
    name: String,
    credential: webauthn_rs_proto::RegisterPublicKeyCredential,
) -> Result<Vec<String>, ServerFnError> {
    use crate::ssr::{console_error, no_store, require_admin_enrolling, session};
    let (state, admin) = require_admin_enrolling().await?;
    no_store();
    let session = session().await?;
    let registration = session
        .remove(REGISTRATION)
        .await
        .ok()
        .flatten()
        .ok_or_else(|| {
            console_error(domain::Error::invalid(
                "No passkey registration is in progress; start again.",
            ))
        })?;
    let codes = state
        .passkeys
        .finish_registration(
            &state.store,
            state.secret_key.as_ref(),
            &admin,
            &name,
            &credential,
            &registration,
        )
        .await
        .map_err(console_error)?;
    Ok(codes.unwrap_or_default())
}

/// Removes one of the admin's second factors (needs a recent login).
#[server]
pub async fn remove_factor(id: String) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, require_recent_login};
    let (state, admin) = require_recent_login().await?;
    let required = state
        .store
        .admin_by_id(&admin.id)
        .await
        .map_err(console_error)?
        .is_some_and(|a| a.factor_required);
    domain::factors::remove(&state.store, &admin, &id, required)
        .await
        .map_err(console_error)
}

/// Changes the admin's own password; the current one is required. Every other session of
/// theirs ends.
#[server]
pub async fn change_password(current: String, new_password: String) -> Result<(), ServerFnError> {
    use crate::ssr::{client_addr, console_error, current_session_handle, require_admin};
    let (state, admin) = require_admin().await?;
    let keep = current_session_handle().await?;
    domain::accounts::change_password(
        &state.store,
        &state.throttles.logins,
        client_addr(),
        &admin,
        &keep,
        &current,
        &new_password,
    )
    .await
    .map_err(console_error)
}

/// Ends one of the admin's own sessions.
#[server]
pub async fn end_session(handle: String) -> Result<(), ServerFnError> {
    use crate::ssr::{console_error, require_admin};
    let (state, admin) = require_admin().await?;
    if domain::sessions::end(&state.store, &admin, &handle)
        .await
        .map_err(console_error)?
    {
        Ok(())
    } else {
        Err(console_error(domain::Error::NotFound))
    }
}

/// Ends every session of the admin but this one; how many.
#[server]
pub async fn end_other_sessions() -> Result<u64, ServerFnError> {
    use crate::ssr::{console_error, current_session_handle, require_admin};
    let (state, admin) = require_admin().await?;
    let current = current_session_handle().await?;
    domain::sessions::end_others(&state.store, &admin, &current)
        .await
        .map_err(console_error)
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let end = ServerAction::<EndSession>::new();
    let end_others = ServerAction::<EndOtherSessions>::new();
    let data = page_data(
        move || {
            (
                change.version().get(),
                end.version().get(),
                end_others.version().get(),
            )
        },
        |_| account(),
    );
    let changed = move || {
        change.value().get().map(|r| match r {
            Ok(()) => view! {
                <p class="success" role="status">"Your password is changed. Your other sessions have ended."</p>
            }
            .into_any(),
            Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
        })
    };
    let ended_error = move || {
        [
            end.value().get().and_then(|r| r.err()),
            end_others.value().get().and_then(|r| r.err()),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|e| view! { <p class="error" role="alert">{crate::error_message(&e)}</p> })
    };
    view! {
        <Title text="Account"/>
        <h1>"Account"</h1>
        <SecondFactors/>
        <section class="card">
            <h2>"Your sessions"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(v) => {
                            let others = v.sessions.iter().filter(|s| !s.current).count();
                            view! {
                                <p class="muted">{format!("Logged in as {}.", v.email)}</p>
                                <div class="table-scroll">
                                    <table class="grid" data-testid="sessions">
                                        <thead><tr>
                                            <th scope="col">"Started"</th>
                                            <th scope="col">"Last seen"</th>
                                            <th scope="col">"Address"</th>
                                            <th scope="col">"Browser"</th>
                                            <th scope="col"><span class="visually-hidden">"Action"</span></th>
                                        </tr></thead>
                                        <tbody>
                                            {v.sessions.into_iter().map(|s| {
                                                let handle = s.handle.clone();
                                                view! {
                                                    <tr data-current=s.current.to_string()>
                                                        <td>{moment_or_unknown(s.created)}</td>
                                                        <td>{moment_or_unknown(s.last_seen)}</td>
                                                        <td>{s.address.unwrap_or_else(|| "unknown".into())}</td>
                                                        <td class="user-agent">{s.user_agent.unwrap_or_else(|| "unknown".into())}</td>
                                                        <td>{if s.current {
                                                            view! { <span class="status good">"This session"</span> }.into_any()
                                                        } else {
                                                            view! {
                                                                <button type="button" disabled=move || end.pending().get()
                                                                    on:click=move |_| { end.dispatch(EndSession { handle: handle.clone() }); }>
                                                                    "End"
                                                                </button>
                                                            }.into_any()
                                                        }}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                                {(others > 0).then(|| view! {
                                    <button type="button" class="danger" disabled=move || end_others.pending().get()
                                        on:click=move |_| { end_others.dispatch(EndOtherSessions {}); }>
                                        "End all other sessions"
                                    </button>
                                })}
                            }.into_any()
                        }
                        Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
            {ended_error}
        </section>
        <section class="card">
            <h2>"Change your password"</h2>
            <ActionForm action=change attr:class="stacked">
                <label for="current-password">"Current password"</label>
                <input id="current-password" type="password" name="current" required autocomplete="current-password"/>
                <label for="new-password">"New password (12 characters or more)"</label>
                <input id="new-password" type="password" name="new_password" required minlength="12" autocomplete="new-password"/>
                <button type="submit" class="primary" disabled=move || change.pending().get()>"Change password"</button>
            </ActionForm>
            {changed}
            <p class="muted">"Changing your password ends every other session of yours."</p>
        </section>
    }
}

fn moment_or_unknown(moment: Option<Moment>) -> AnyView {
    match moment {
        Some(m) => view! { <LocalTime moment=m/> }.into_any(),
        None => "unknown".into_any(),
    }
}

/// The admin's second factors: those they have, setting up an authenticator app (QR code,
/// then a first code), and the recovery codes that come with the first factor, shown once.
#[component]
fn SecondFactors() -> impl IntoView {
    let start = ServerAction::<StartTotp>::new();
    let confirm = ServerAction::<ConfirmTotp>::new();
    let remove = ServerAction::<RemoveFactor>::new();
    let data = page_data(
        move || (confirm.version().get(), remove.version().get()),
        |_| account(),
    );
    // The setup in progress, until its first code confirms it.
    let setup = move || {
        start
            .value()
            .get()
            .and_then(|r| r.ok())
            .filter(|_| !matches!(confirm.value().get(), Some(Ok(_))))
    };
    let remove_step_up =
        Signal::derive(move || !remove.pending().get() && needs_step_up(&remove.value().get()));
    let start_step_up =
        Signal::derive(move || !start.pending().get() && needs_step_up(&start.value().get()));
    let last_start = RwSignal::new(None::<StartTotp>);
    let retry_start = Callback::new(move |()| {
        if let Some(request) = last_start.get_untracked() {
            start.dispatch(request);
        }
    });
    // Adding a passkey: the server's challenge, the browser's ceremony, the server's check.
    let passkey_name = RwSignal::new(String::from("Passkey"));
    let passkey = RwSignal::new(None::<Result<Vec<String>, String>>);
    let adding = RwSignal::new(false);
    let add_passkey = Callback::new(move |()| {
        let name = passkey_name.get_untracked();
        adding.set(true);
        passkey.set(None);
        leptos::task::spawn_local(async move {
            let outcome = async {
                let challenge = start_passkey_registration()
                    .await
                    .map_err(|e| crate::error_message(&e))?;
                let credential = crate::webauthn::create(challenge).await?;
                finish_passkey_registration(name, credential)
                    .await
                    .map_err(|e| crate::error_message(&e))
            }
            .await;
            adding.set(false);
            passkey.set(Some(outcome));
            data.refetch();
        });
    });
    let passkey_step_up = Signal::derive(move || {
        !adding.get() && matches!(passkey.get(), Some(Err(e)) if e == crate::STEP_UP)
    });
    // Recovery codes come once, with the first factor, whichever it is.
    let new_codes = move || {
        confirm
            .value()
            .get()
            .and_then(|r| r.ok())
            .or_else(|| passkey.get().and_then(|r| r.ok()))
            .filter(|codes| !codes.is_empty())
    };
    let last_remove = RwSignal::new(None::<RemoveFactor>);
    let retry_remove = Callback::new(move |()| {
        if let Some(request) = last_remove.get_untracked() {
            remove.dispatch(request);
        }
    });
    let error = move || {
        [
            start
                .value()
                .get()
                .filter(|r| !needs_step_up(&Some(r.clone())))
                .and_then(|r| r.err()),
            confirm.value().get().and_then(|r| r.err()),
            remove
                .value()
                .get()
                .filter(|r| !needs_step_up(&Some(r.clone())))
                .and_then(|r| r.err()),
        ]
        .into_iter()
        .flatten()
        .next()
        .map(|e| view! { <p class="error" role="alert">{crate::error_message(&e)}</p> })
    };
    view! {
        <section class="card" data-testid="second-factors">
            <h2>"Second factor"</h2>
            <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(v) => view! {
                            {v.must_enrol.then(|| view! {
                                <p class="notice" role="alert">{crate::ENROL}</p>
                            })}
                            {if v.factors.is_empty() {
                                view! { <p>"You log in with your password alone. Add an authenticator app so that a stolen password is not enough."</p> }.into_any()
                            } else {
                                view! {
                                    <ul class="plain factors">
                                        {v.factors.into_iter().map(|f| {
                                            let id = f.id.clone();
                                            view! {
                                                <li data-kind=f.kind.clone()>
                                                    <strong>{f.name}</strong>
                                                    {if f.kind == "passkey" { " · passkey, added " } else { " · authenticator app, added " }}
                                                    <LocalTime moment=f.added/>
                                                    {f.last_used.map(|m| view! { {", last used "}<LocalTime moment=m/> })}
                                                    " "
                                                    <button type="button" disabled=move || remove.pending().get()
                                                        on:click=move |_| {
                                                            let request = RemoveFactor { id: id.clone() };
                                                            last_remove.set(Some(request.clone()));
                                                            remove.dispatch(request);
                                                        }>
                                                        "Remove"
                                                    </button>
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                    <p class="muted">{format!("{} recovery codes left.", v.recovery_codes_left)}</p>
                                }.into_any()
                            }}
                        }.into_any(),
                        Err(e) => view! { <p class="error" role="alert">{crate::error_message(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
            <StepUp needed=remove_step_up retry=retry_remove/>
            {move || match setup() {
                Some(s) => view! {
                    <div class="totp-setup" data-testid="totp-setup">
                        <p>"Scan this code with your authenticator app, or type the key into it. Then enter the code it shows."</p>
                        <img src=s.qr alt="QR code for your authenticator app" width="200" height="200"/>
                        <p>"Key: " <code data-testid="totp-secret">{s.secret.clone()}</code></p>
                        <ActionForm action=confirm attr:class="stacked">
                            <input type="hidden" name="factor_id" value=s.factor_id.clone()/>
                            <label for="totp-code">"Code from the app"</label>
                            <input id="totp-code" type="text" name="code" autocomplete="one-time-code" inputmode="numeric" required/>
                            <button type="submit" class="primary" disabled=move || confirm.pending().get()>"Confirm"</button>
                        </ActionForm>
                    </div>
                }.into_any(),
                None => view! {
                    <form class="stacked" on:submit=move |ev| {
                        ev.prevent_default();
                        if let Ok(request) = StartTotp::from_event(&ev) {
                            last_start.set(Some(request.clone()));
                            start.dispatch(request);
                        }
                    }>
                        <label for="factor-name">"Name of the new authenticator (e.g. Phone)"</label>
                        <input id="factor-name" type="text" name="name" required maxlength="60" value="Phone"/>
                        <button type="submit" disabled=move || start.pending().get()>"Set up an authenticator app"</button>
                    </form>
                    <div class="stacked passkey-add">
                        <label for="passkey-name">"Name of the new passkey (e.g. Laptop)"</label>
                        <input id="passkey-name" type="text" maxlength="60" prop:value=passkey_name
                            on:input=move |ev| passkey_name.set(event_target_value(&ev))/>
                        <button type="button" disabled=move || adding.get() on:click=move |_| add_passkey.run(())>"Add a passkey"</button>
                    </div>
                }.into_any(),
            }}
            <StepUp needed=start_step_up retry=retry_start/>
            <StepUp needed=passkey_step_up retry=add_passkey/>
            {move || passkey.get().and_then(|r| r.err()).filter(|e| e != crate::STEP_UP).map(|e| view! { <p class="error" role="alert">{e}</p> })}
            {move || new_codes().map(|codes| view! {
                <div class="recovery-codes" role="status" data-testid="recovery-codes">
                    <p class="warning">"Your second factor is set up. Save these recovery codes now: each logs you in once if you lose your authenticator or passkey, and they will not be shown again."</p>
                    <ul class="plain">
                        {codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
                    </ul>
                </div>
            })}
            {error}
        </section>
    }
}
