//! The console's assets under `/pkg`: the wasm modules, their JS glue and the stylesheet. The
//! build (`tools/site-pkg.mjs`) writes each build's files into a folder named by the hash of
//! their content (`pkg/3f2a9c01d4b7e865/console.wasm`), beside a brotli and a gzip copy of
//! each, and names the current folder in the site's hash file, which the pages read. A hashed
//! folder always holds the same bytes, so browsers keep its files for a year without asking
//! again: a new build brings a new folder, and the pages (never stored) name it at once.

use std::path::Path;

use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use leptos::prelude::LeptosOptions;
use tower_http::services::ServeDir;

/// The file in the site root naming the current build's folder in `pkg/`.
pub const HASH_FILE: &str = "hash.txt";

/// What a file of a hashed build is sent with: it never changes, so it is never asked for
/// again.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What any other file in `pkg/` is sent with (a site built without hashing, such as
/// `cargo leptos build` makes): kept, but checked with the server (`If-Modified-Since`) on
/// each use.
const REVALIDATE: &str = "no-cache";

/// `options` naming the site's current build in the page about to be rendered: its hashed
/// folder (`pkg/<hash>`) when the site has a hash file, otherwise `pkg/` itself. Read for
/// every page, so that a running server serves a rebuilt site at once.
///
/// Leptos reads which modules a lazy route needs (`__wasm_split_manifest.json`) once, from
/// the build of the first page rendered: after a rebuild, a page's hints to fetch them early
/// name the build before (which the build keeps), until the server restarts. The modules the
/// page does load come from the current build.
pub fn current_build(options: &LeptosOptions) -> LeptosOptions {
    let mut options = options.clone();
    let hash_file = Path::new(&*options.site_root).join(HASH_FILE);
    if let Ok(build) = std::fs::read_to_string(hash_file) {
        let build = build.trim();
        if is_hash(build) {
            options.site_pkg_dir = format!("{}/{build}", options.site_pkg_dir).into();
        }
    }
    options
}

/// Serves `pkg/` of the site, precompressed where the client accepts it (brotli before gzip).
/// Outside the console's session layer: an asset needs no session, so its request costs no
/// session lookup.
pub fn router<S: Clone + Send + Sync + 'static>(options: &LeptosOptions) -> Router<S> {
    let pkg_dir = &*options.site_pkg_dir;
    let files = ServeDir::new(Path::new(&*options.site_root).join(pkg_dir))
        .precompressed_br()
        .precompressed_gzip();
    Router::new()
        .nest_service(&format!("/{pkg_dir}"), files)
        .layer(axum::middleware::from_fn(cache_headers))
}

async fn cache_headers(req: Request, next: Next) -> Response {
    let hashed = in_hashed_build(req.uri().path());
    let mut response = next.run(req).await;
    if matches!(response.status(), StatusCode::OK | StatusCode::NOT_MODIFIED) {
        let headers = response.headers_mut();
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(if hashed { IMMUTABLE } else { REVALIDATE }),
        );
        // The body depends on Accept-Encoding: a shared cache must not hand a brotli body
        // to a client that asked for none.
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Whether `path` (under `/pkg`) is a file of a hashed build: `/pkg/<hash>/<file>`.
fn in_hashed_build(path: &str) -> bool {
    let mut segments = path.trim_start_matches('/').split('/').skip(1);
    matches!(
        (segments.next(), segments.next()),
        (Some(build), Some(file)) if is_hash(build) && !file.is_empty()
    )
}

/// Whether `name` is a build's hash as the build writes it: 16 or more hexadecimal digits.
fn is_hash(name: &str) -> bool {
    name.len() >= 16 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::in_hashed_build;

    #[test]
    fn only_files_in_a_folder_named_by_a_hash_count_as_hashed() {
        for (path, hashed) in [
            ("/pkg/3f2a9c01d4b7e865/console.wasm", true),
            ("/pkg/3F2A9C01D4B7E865/console.js", true),
            ("/pkg/3f2a9c01d4b7e86512/users_page_1.wasm", true),
            ("/pkg/3f2a9c01d4b7e865/snippets/app/inline0.js", true),
            ("/pkg/console.wasm", false),
            ("/pkg/console.3f2a9c01d4b7e865.wasm", false),
            ("/pkg/3f2a9c01/console.wasm", false),
            ("/pkg/3f2a9c01d4b7e86z/console.wasm", false),
            ("/pkg/3f2a9c01d4b7e865/", false),
            ("/pkg/3f2a9c01d4b7e865", false),
            ("", false),
        ] {
            assert_eq!(in_hashed_build(path), hashed, "{path}");
        }
    }
}
