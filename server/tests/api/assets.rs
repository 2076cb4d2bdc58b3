//! The console's assets: each build's files in a folder under `/pkg` named by their content's
//! hash, sent precompressed (brotli before gzip) with a year-long immutable `Cache-Control`,
//! while pages stay `no-store` and name the current build. The site is a tiny one made by the
//! build's own script (`tools/site-pkg.mjs`, run with Node.js) from stand-ins for the wasm
//! modules, JS and CSS, so no wasm build is needed.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::common::TestServer;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Writes stand-ins for a build's files (`version` changes their content): the main wasm
/// module, a page's lazily loaded one and their loader, the JS glue and the stylesheet, and
/// publishes them into `site` as the build does.
fn build_site(site: &Path, version: &str) -> Assets {
    let built = tempfile::tempdir().unwrap();
    let wasm = |name: &str| {
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend(
            format!("{name} {version} custom section ")
                .repeat(200)
                .into_bytes(),
        );
        wasm
    };
    let text = |line: String| line.repeat(40).into_bytes();
    let files = [
        (
            "console.js",
            text(format!(
                "export default function init() {{ /* {version} */ }}\n"
            )),
        ),
        ("console.wasm", wasm("main")),
        (
            "console.css",
            text(format!("body {{ color: black; }} /* {version} */\n")),
        ),
        ("users_page_1.wasm", wasm("users page")),
        (
            "__wasm_split.______________________.js",
            text(format!("export const load = 1; /* {version} */\n")),
        ),
    ];
    for (name, content) in &files {
        std::fs::write(built.path().join(name), content).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/site-pkg.mjs");
    let status = Command::new("node")
        .arg(&script)
        .arg(built.path())
        .arg(site)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("Node.js runs the site's build script (apt-get install -y nodejs)");
    assert!(status.success(), "{} failed", script.display());
    let build = std::fs::read_to_string(site.join("hash.txt")).unwrap();
    let path = |name: &str| format!("/pkg/{}/{name}", build.trim());
    Assets {
        js: path("console.js"),
        wasm: path("console.wasm"),
        css: path("console.css"),
        page: path("users_page_1.wasm"),
        loader: path("__wasm_split.______________________.js"),
        wasm_content: files[1].1.clone(),
    }
}

struct Assets {
    js: String,
    wasm: String,
    css: String,
    /// A page's lazily loaded module.
    page: String,
    /// The JS that loads the pages' modules.
    loader: String,
    wasm_content: Vec<u8>,
}

async fn get(
    s: &TestServer,
    path: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Bytes) {
    let mut request = Request::get(path).header(header::HOST, "console.example.com");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = s
        .app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

fn decompress(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut plain = Vec::new();
    match encoding {
        "br" => brotli_decompressor::Decompressor::new(body, 4096)
            .read_to_end(&mut plain)
            .unwrap(),
        "gzip" => flate2::read::GzDecoder::new(body)
            .read_to_end(&mut plain)
            .unwrap(),
        other => panic!("unexpected encoding {other}"),
    };
    plain
}

#[tokio::test]
async fn assets_are_sent_compressed_and_cacheable_for_good_while_pages_are_never_stored() {
    let site = tempfile::tempdir().unwrap();
    let assets = build_site(site.path(), "first build");
    let site_root = site.path().to_str().unwrap();
    let s = TestServer::start_with(&[("LEPTOS_SITE_ROOT", site_root)]).await;

    for (accepted, sent) in [
        ("br, gzip", Some("br")),
        ("gzip", Some("gzip")),
        ("gzip;q=0.5, br;q=0.1", Some("gzip")),
        ("identity", None),
    ] {
        let (status, headers, body) = get(&s, &assets.wasm, &[("accept-encoding", accepted)]).await;
        assert_eq!(status, StatusCode::OK, "{accepted}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/wasm");
        assert_eq!(headers[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(headers[header::VARY], "accept-encoding");
        assert!(headers.contains_key(header::LAST_MODIFIED));
        let encoding = headers
            .get(header::CONTENT_ENCODING)
            .map(|v| v.to_str().unwrap());
        assert_eq!(encoding, sent, "Accept-Encoding: {accepted}");
        match encoding {
            Some(encoding) => {
                assert!(
                    body.len() < assets.wasm_content.len(),
                    "{encoding} is smaller"
                );
                assert_eq!(
                    decompress(encoding, &body),
                    assets.wasm_content,
                    "{encoding}"
                );
            }
            None => assert_eq!(body, assets.wasm_content),
        }
    }
    for path in [&assets.js, &assets.css, &assets.page, &assets.loader] {
        let (status, headers, _) = get(&s, path, &[("accept-encoding", "br, gzip")]).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_ENCODING], "br", "{path}");
        assert_eq!(headers[header::CACHE_CONTROL], IMMUTABLE, "{path}");
    }
    // A browser holding the file may ask whether it changed.
    let (_, headers, _) = get(&s, &assets.wasm, &[]).await;
    let modified = headers[header::LAST_MODIFIED].to_str().unwrap();
    let (status, headers, _) = get(&s, &assets.wasm, &[("if-modified-since", modified)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert_eq!(headers[header::CACHE_CONTROL], IMMUTABLE);
    let (status, _, _) = get(&s, "/pkg/0123456789abcdef/console.wasm", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Pages are never stored, and name the current files.
    let (status, headers, body) = get(&s, "/login", &[("accept-encoding", "br, gzip")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let page = String::from_utf8(body.to_vec()).unwrap();
    for path in [&assets.js, &assets.wasm, &assets.css] {
        assert!(
            page.contains(path.as_str()),
            "{path} missing from the page:\n{page}"
        );
    }

    // A new build, while the server runs: the next page names the new files. The build
    // before stays, for pages still open that load a page's module; the one before it goes.
    let rebuilt = build_site(site.path(), "second build");
    assert_ne!(rebuilt.wasm, assets.wasm);
    let (_, _, body) = get(&s, "/login", &[]).await;
    let page = String::from_utf8(body.to_vec()).unwrap();
    for path in [&rebuilt.js, &rebuilt.wasm, &rebuilt.css] {
        assert!(
            page.contains(path.as_str()),
            "{path} missing from the page:\n{page}"
        );
    }
    assert_eq!(get(&s, &rebuilt.wasm, &[]).await.0, StatusCode::OK);
    assert_eq!(get(&s, &assets.page, &[]).await.0, StatusCode::OK);
    build_site(site.path(), "third build");
    assert_eq!(get(&s, &rebuilt.page, &[]).await.0, StatusCode::OK);
    assert_eq!(get(&s, &assets.page, &[]).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&s, &assets.wasm, &[]).await.0, StatusCode::NOT_FOUND);
}
