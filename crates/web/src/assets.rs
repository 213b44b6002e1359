//! Static assets embedded in the binary (no files to deploy next to it): the page style, the
//! graph script and vendored uPlot (see `assets/vendor/uplot/ORIGIN.md`). URLs carry a
//! fingerprint of the content, `/assets/<fingerprint>/<name>`, so they can be cached for a
//! year and a new build is still picked up at once.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "lookout.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/lookout.css"),
    },
    Asset {
        name: "graph.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/graph.js"),
    },
    Asset {
        name: "uPlot.iife.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../assets/vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uPlot.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../assets/vendor/uplot/uPlot.min.css"),
    },
];

/// First 12 hex digits of the SHA-256 over all assets.
pub(crate) fn fingerprint() -> &'static str {
    static FP: OnceLock<String> = OnceLock::new();
    FP.get_or_init(|| {
        let mut h = Sha256::new();
        for a in ASSETS {
            h.update(a.name.as_bytes());
            h.update(a.body);
        }
        hex::encode(h.finalize())[..12].to_string()
    })
}

/// URL prefix of the assets, e.g. `/assets/0123456789ab`.
pub(crate) fn prefix() -> String {
    format!("/assets/{}", fingerprint())
}

/// `GET /assets/{fingerprint}/{name}`. A stale fingerprint (a page from an older build still
/// open) gets the current file with a short cache lifetime rather than a 404.
pub(crate) async fn serve(Path((fp, name)): Path<(String, String)>) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let cache = if fp == fingerprint() {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=60"
    };
    (
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CACHE_CONTROL, cache),
        ],
        a.body,
    )
        .into_response()
}
