//! The allow-list: which Engine API requests the proxy forwards. Pure: a method and the raw
//! request target in, an allowed route or a refusal out.
//!
//! The list is exactly the calls vigild (and `vigilctl support-bundle`) make through bollard:
//! the probes (`containers` list and inspect, `/events`), the container actions (start, stop,
//! restart), `prune docker` (dangling images, build cache), and the update engine's image
//! steps (load, inspect, tag, untag, `/info` for Docker's root directory); `/version` is
//! bollard's API version negotiation.
//!
//! A target is matched only in its canonical form and never normalised: dockerd decodes
//! `%xx` and its router cleans `.`, `..` and `//`, so any of those (or anything else this
//! function would have to interpret) could reach a route other than the one matched here.
//! Such a target is refused.

/// A request the proxy forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /version`: bollard's API version negotiation.
    Version,
    /// `GET /info`: where Docker keeps its data (the update's space check).
    Info,
    /// `GET /events`: the containers probe's event stream.
    Events,
    /// `GET /containers/json`.
    ContainerList,
    /// `GET /containers/{name}/json`.
    ContainerInspect,
    /// `POST /containers/{name}/start`.
    ContainerStart,
    /// `POST /containers/{name}/stop`.
    ContainerStop,
    /// `POST /containers/{name}/restart`.
    ContainerRestart,
    /// `POST /images/load`: an update bundle's image archive.
    ImageLoad,
    /// `GET /images/{reference}/json`.
    ImageInspect,
    /// `POST /images/{reference}/tag`: a tag put back on rollback.
    ImageTag,
    /// `DELETE /images/{reference}`: a tag taken away on rollback.
    ImageRemove,
    /// `POST /images/prune`: `prune docker` (dangling images).
    ImagePrune,
    /// `POST /build/prune`: `prune docker` (build cache).
    BuildCachePrune,
}

/// Why a request is not forwarded (for the log; the client only learns that it is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A method the proxy never forwards (any spelling but these exact upper-case ones).
    Method,
    /// Not an origin-form target (`/…`): absolute URI, authority or `*`.
    NotOriginForm,
    /// A target longer than any call vigild makes.
    TooLong,
    /// A byte outside the canonical path alphabet: `%`-encoding, `\`, `;`, space, …
    PathCharacter,
    /// An empty segment (`//`, a trailing `/`), or a `.` or `..` segment.
    PathSegment,
    /// A malformed query (a byte a URI may not carry there, or a broken `%xx`).
    Query,
    /// A canonical target that names no allowed call.
    NotAllowed,
}

impl Refusal {
    /// A few words for the log line.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::Method => "method not forwarded",
            Refusal::NotOriginForm => "not an origin-form target",
            Refusal::TooLong => "target too long",
            Refusal::PathCharacter => "encoded or unexpected character in the path",
            Refusal::PathSegment => "empty, `.` or `..` path segment",
            Refusal::Query => "malformed query",
            Refusal::NotAllowed => "not a call vigild makes",
        }
    }
}

/// The longest target considered at all.
const MAX_TARGET_LEN: usize = 4096;
/// The longest container name or id (Docker ids are 64 hex digits).
const MAX_NAME_LEN: usize = 128;
/// The longest image reference (registry, path, tag and digest).
const MAX_REFERENCE_LEN: usize = 512;

/// Decides one request: `method` as sent (methods are case-sensitive), `target` the raw
/// request target of the request line.
pub fn decide(method: &str, target: &str) -> Result<Route, Refusal> {
    if !matches!(method, "GET" | "POST" | "DELETE") {
        return Err(Refusal::Method);
    }
    if target.len() > MAX_TARGET_LEN {
        return Err(Refusal::TooLong);
    }
    if !target.starts_with('/') {
        return Err(Refusal::NotOriginForm);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if !path.bytes().all(path_byte) {
        return Err(Refusal::PathCharacter);
    }
    if let Some(q) = query {
        if !query_ok(q) {
            return Err(Refusal::Query);
        }
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(Refusal::PathSegment);
    }
    let rest = match segments.split_first() {
        Some((first, rest)) if api_version(first) => rest,
        _ => &segments[..],
    };
    route(method, rest).ok_or(Refusal::NotAllowed)
}

/// The route of canonical segments (after any `vN.M` prefix).
fn route(method: &str, s: &[&str]) -> Option<Route> {
    use Route::*;
    let r = match (method, s) {
        ("GET", ["version"]) => Version,
        ("GET", ["info"]) => Info,
        ("GET", ["events"]) => Events,
        ("GET", ["containers", "json"]) => ContainerList,
        ("GET", ["containers", n, "json"]) if container_name(n) => ContainerInspect,
        ("POST", ["containers", n, verb]) if container_name(n) => match *verb {
            "start" => ContainerStart,
            "stop" => ContainerStop,
            "restart" => ContainerRestart,
            _ => return None,
        },
        ("POST", ["images", "load"]) => ImageLoad,
        ("POST", ["images", "prune"]) => ImagePrune,
        ("POST", ["build", "prune"]) => BuildCachePrune,
        ("GET", ["images", reference @ .., "json"]) if image_reference(reference) => ImageInspect,
        ("POST", ["images", reference @ .., "tag"]) if image_reference(reference) => ImageTag,
        ("DELETE", ["images", reference @ ..]) if image_reference(reference) => ImageRemove,
        _ => return None,
    };
    Some(r)
}

/// A byte of a canonical path: what container names, image references and API paths use.
fn path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b':' | b'@')
}

/// A query as a URI may carry it (RFC 3986 `query`), every `%` followed by two hex digits.
fn query_ok(q: &str) -> bool {
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
                continue;
            }
            c if c.is_ascii_alphanumeric() => {}
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+'
            | b',' | b';' | b'=' | b':' | b'@' | b'/' | b'?' => {}
            _ => return false,
        }
        i += 1;
    }
    true
}

/// `vN.M`, the API version prefix Docker clients may put first.
fn api_version(s: &str) -> bool {
    let Some((major, minor)) = s.strip_prefix('v').and_then(|v| v.split_once('.')) else {
        return false;
    };
    let digits = |d: &str, max: usize| {
        !d.is_empty() && d.len() <= max && d.bytes().all(|b| b.is_ascii_digit())
    };
    digits(major, 2) && digits(minor, 3)
}

/// A container name or id as Docker allows them: `[A-Za-z0-9][A-Za-z0-9_.-]*`.
fn container_name(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// An image reference or id, as its path segments (`registry:5000/a/b:tag@sha256:…`).
fn image_reference(segments: &[&str]) -> bool {
    let len = segments.iter().map(|s| s.len() + 1).sum::<usize>();
    !segments.is_empty()
        && len <= MAX_REFERENCE_LEN
        && segments.iter().all(|s| {
            s.bytes().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && s.bytes().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b':' | b'@')
                })
        })
}

#[cfg(test)]
mod tests;
