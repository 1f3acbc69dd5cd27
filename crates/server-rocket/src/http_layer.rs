//! Rocket's side of the contract's HTTP layer, before routing and after it fails: the shared
//! rules ([`shared::http_rules`]) in a request fairing, and a catcher that answers what Rocket
//! refuses on its own with the same status and JSON body as the other stacks.
//!
//! Rocket 0.5 differs from the contract in four ways this undoes:
//! - it honours a `_method` field of a form-encoded `POST` (a method override): the fairing
//!   gives the request its method back;
//! - it routes on percent-decoded segments (`/%74asks` reaches `/tasks`): the fairing escapes
//!   every `%` of the path, so routing sees the path as sent and the id guard decodes it once;
//! - it routes paths with empty segments or a trailing slash (`/tasks/`): they go to a path no
//!   route serves;
//! - it answers a method outside its fixed set (`QUERY`) with 400 before any fairing runs: the
//!   catcher answers 405 with `allow`, like any other method a path does not serve.

use std::str::FromStr as _;

use rocket::data::Data;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::uri::Origin;
use rocket::http::{Method, Status};
use rocket::request::Request;
use rocket::{Catcher, catcher};
use shared::{ApiError, ErrorKind, allow};

use crate::Error;

/// A path with no route: requests sent here end in the catcher.
const UNROUTED: &str = "/.unrouted";

/// The paths of the contract, the methods each serves, and its `allow` header.
pub const PATHS: [(&str, &[Method], &str); 6] = [
    ("/", &[Method::Get], allow::READ_ONLY),
    ("/health", &[Method::Get], allow::READ_ONLY),
    ("/sleep", &[Method::Get], allow::READ_ONLY),
    ("/fibonacci", &[Method::Get], allow::READ_ONLY),
    ("/tasks", &[Method::Get, Method::Post], allow::TASKS),
    (
        "/tasks/<id>",
        &[Method::Get, Method::Put, Method::Delete],
        allow::TASK,
    ),
];

/// The `allow` header of the contract's path that `path` (as sent) names, if it names one.
fn allow_for(path: &str) -> Option<&'static str> {
    PATHS.iter().find_map(|&(pattern, _, header)| {
        let matches = match pattern.strip_suffix("<id>") {
            Some(prefix) => path
                .strip_prefix(prefix)
                .is_some_and(|id| !id.is_empty() && !id.contains('/')),
            None => path == pattern,
        };
        matches.then_some(header)
    })
}

/// What the fairing decided, for the catcher: if the request broke a rule, the error to
/// answer. Its absence from the request's cache means the fairing never ran (Rocket skips
/// fairings for a method it does not know).
struct Checked(Option<ApiError>);

/// Set by the fairing: the body broke off in its first bytes (see [`body_unreadable`]).
struct BodyUnreadable(bool);

/// Whether the request's body broke off in the bytes Rocket reads before any fairing (a bad
/// chunk, say), which Rocket then presents as a body that simply ended.
pub fn body_unreadable(req: &Request<'_>) -> bool {
    req.local_cache(|| BodyUnreadable(false)).0
}

/// The request fairing described in the module documentation.
#[derive(Debug)]
pub struct HttpRules;

#[rocket::async_trait]
impl Fairing for HttpRules {
    fn info(&self) -> Info {
        Info {
            name: "the contract's HTTP layer",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, data: &mut Data<'_>) {
        // Rocket read the first 14 bytes of the body before any fairing ran, and dropped a read
        // error there: a body that stopped short of 14 bytes without its end failed to arrive.
        let ended = data.peek_complete();
        let unreadable = !ended && data.peek(14).await.len() < 14;
        req.local_cache(|| BodyUnreadable(unreadable));
        undo_method_override(req, data).await;
        let headers = req.headers();
        let target = req.uri().to_string();
        let head = shared::http_rules::Head::new(
            target.as_bytes(),
            headers.get("host").count(),
            headers.get("transfer-encoding").map(str::as_bytes),
        );
        let broken = shared::http_rules::check_head(&head).err();
        let path = req.uri().path().as_str().to_owned();
        let unnormalized = path.contains("//") || (path.len() > 1 && path.ends_with('/'));
        if broken.is_some() || unnormalized {
            req.set_uri(Origin::parse(UNROUTED).expect("a valid origin"));
        } else if path.contains('%') {
            let escaped = path.replace('%', "%25");
            let query = req.uri().query().map(|q| q.as_str().to_owned());
            req.set_uri(Origin::new(escaped, query));
        }
        req.local_cache(|| Some(Checked(broken)));
    }
}

/// Rocket turned a form-encoded `POST` whose first field is `_method=M` into an `M` request
/// before any fairing ran; this turns it back (the form is still in Rocket's peek buffer).
/// A request really sent with method `M` and such a form body becomes a `POST` too: the one
/// case this cannot tell apart.
async fn undo_method_override(req: &mut Request<'_>, data: &mut Data<'_>) {
    let method = req.method();
    if method == Method::Post || !req.content_type().is_some_and(|c| c.is_form()) {
        return;
    }
    let head = data.peek(14).await;
    let value = head
        .strip_prefix(b"_method=")
        .and_then(|rest| rest.split(|&b| b == b'&').next())
        .and_then(|value| std::str::from_utf8(value).ok())
        .and_then(|value| Method::from_str(value).ok());
    if value == Some(method) {
        req.set_method(Method::Post);
    }
}

/// The catcher for every status Rocket answers itself.
pub fn catcher() -> Catcher {
    Catcher::new(None, catch)
}

fn catch<'r>(status: Status, req: &'r Request<'_>) -> catcher::BoxFuture<'r> {
    Box::pin(async move {
        let error = match req.local_cache(|| None::<Checked>) {
            Some(Checked(Some(broken))) => broken.clone(),
            // A method outside Rocket's set: the fairing never ran and the path is intact.
            None if status == Status::BadRequest => {
                if let Some(allowed) = allow_for(req.uri().path().as_str()) {
                    return crate::method_not_allowed(req, allowed);
                }
                ApiError::of(ErrorKind::NotFound)
            }
            _ => ApiError::of(ErrorKind::from_status(status.code)),
        };
        rocket::response::Responder::respond_to(Error(error), req)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_headers_follow_the_paths() {
        let cases = [
            ("/", Some(allow::READ_ONLY)),
            ("/health", Some(allow::READ_ONLY)),
            ("/tasks", Some(allow::TASKS)),
            ("/tasks/7", Some(allow::TASK)),
            ("/tasks/7/x", None),
            ("/tasks/", None),
            ("/nope", None),
        ];
        for (path, expected) in cases {
            assert_eq!(allow_for(path), expected, "{path}");
        }
    }
}
