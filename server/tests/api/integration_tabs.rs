//! Every integration kind has its tab in the console: the one route and component serve
//! each kind the model names, with its label, and the server functions take the kind typed.

use axum::http::{Method, StatusCode};
use leptos::server_fn::ServerFn;
use model::IntegrationKind;

use crate::common::TestServer;

const HOST: &str = "console.example.com";
const ORIGIN: &str = "https://console.example.com";

#[tokio::test]
async fn every_kind_has_its_tab_route_and_label() {
    let s = TestServer::start().await;
    let cookie = s.logged_in_cookie().await;
    let page = |path: String| {
        let cookie = cookie.clone();
        let s = &s;
        async move {
            let reply = s
                .raw(
                    Method::GET,
                    &path,
                    &[("host", HOST), ("cookie", &cookie)],
                    None,
                )
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{path}");
            reply.body.as_str().expect("HTML").to_owned()
        }
    };
    for &kind in IntegrationKind::ALL {
        let html = page(kind.path()).await;
        assert!(
            html.contains(&format!("data-kind=\"{}\"", kind.as_str())),
            "{kind}: {html}"
        );
        assert!(
            // Leptos marks where dynamic text ends with `<!>`.
            html.contains(&format!("<h2>{}<!></h2>", kind.label())),
            "{kind}: {html}"
        );
        for &tab in IntegrationKind::ALL {
            assert!(
                html.contains(&format!("href=\"{}\"", tab.path())),
                "{kind}: no tab for {tab}"
            );
        }
        let reply = s
            .call(
                app::integrations::Integration::PATH,
                &[("kind", kind.as_str())],
                Some(&cookie),
                ORIGIN,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{kind}: {}", reply.body);
        assert_eq!(reply.body["has_token"], kind == IntegrationKind::OneLogin);
    }
    let unknown = page("/settings/directory-integrations/azure".into()).await;
    assert!(unknown.contains("Page not found."), "{unknown}");
    let refused = s
        .call(
            app::integrations::Integration::PATH,
            &[("kind", "azure")],
            Some(&cookie),
            ORIGIN,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused
            .body
            .to_string()
            .contains(r#"unknown integration \"azure\"; expected onelogin, okta"#),
        "{}",
        refused.body
    );
    let refused = s
        .call(
            app::integrations::SetDeleteMode::PATH,
            &[("kind", "okta"), ("mode", "remove")],
            Some(&cookie),
            ORIGIN,
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
}
