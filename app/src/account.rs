//! The admin's own account (the navigation's "Account"): their password, and the sessions
//! they are logged in with, any of which they can end.

use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::{LocalTime, Moment};

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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub email: String,
    pub sessions: Vec<SessionRow>,
}

#[server]
pub async fn account() -> Result<AccountView, ServerFnError> {
    use crate::ssr::{console_error, current_session_handle, require_admin};
    let (state, admin) = require_admin().await?;
    let current = current_session_handle().await?;
    let sessions = domain::sessions::sessions(&state.store, &admin.id)
        .await
        .map_err(console_error)?;
    Ok(AccountView {
        email: admin.email,
        sessions: sessions
            .into_iter()
            .map(|s| SessionRow {
                current: s.handle == current,
                created: s.info.as_ref().map(|i| Moment::new(i.created_at)),
                last_seen: s.info.as_ref().map(|i| Moment::new(i.last_seen_at)),
                address: s.info.as_ref().and_then(|i| i.address.clone()),
                user_agent: s.info.and_then(|i| i.user_agent),
                handle: s.handle,
            })
            .collect(),
    })
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
    let data = Resource::new(
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
