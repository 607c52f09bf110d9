//! The static files, embedded in the binary and gzip-compressed once at
//! startup, served with an ETag so a phone revalidates instead of
//! re-downloading. Everything the pages load comes from here: the page
//! makes no request outside the box.

use super::State;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::io::Write;

struct Asset {
    name: &'static str,
    mime: &'static str,
    raw: &'static [u8],
    gzip: Vec<u8>,
    etag: String,
}

pub struct Assets(Vec<Asset>);

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "firmware.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/firmware.js"),
    ),
    (
        "icon.svg",
        "image/svg+xml",
        include_bytes!("assets/icon.svg"),
    ),
];

impl Assets {
    pub fn build() -> Assets {
        Assets(
            FILES
                .iter()
                .map(|(name, mime, raw)| {
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                    enc.write_all(raw).expect("writing to a Vec cannot fail");
                    let gzip = enc.finish().expect("writing to a Vec cannot fail");
                    Asset {
                        name,
                        mime,
                        raw,
                        gzip,
                        etag: format!("\"{:08x}\"", crc32fast::hash(raw)),
                    }
                })
                .collect(),
        )
    }

    /// Sum of the compressed sizes: what a first visit downloads.
    pub fn compressed_total(&self) -> usize {
        self.0.iter().map(|a| a.gzip.len()).sum()
    }
}

pub fn routes() -> Router<State> {
    Router::new().route("/assets/{name}", get(serve_asset))
}

async fn serve_asset(
    axum::extract::State(st): axum::extract::State<State>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(a) = st.assets.0.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&a.etag).expect("hex etag"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == a.etag)
    {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if gzip_ok {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        (h, a.gzip.clone()).into_response()
    } else {
        (h, a.raw).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_assets_fit_the_budget() {
        let a = Assets::build();
        let total = a.compressed_total();
        assert!(total <= 150 * 1024, "assets are {total} bytes compressed");
        for asset in &a.0 {
            assert!(
                asset.gzip.len() < asset.raw.len(),
                "{} does not compress",
                asset.name
            );
        }
    }
}
