//! Everything a client sends, checked in one place so every server accepts and rejects the same
//! requests with the same status and sentence: JSON bodies, the content type, path ids and
//! query parameters.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use crate::error::{ApiError, ErrorKind};
use crate::task::{NewTask, TaskUpdate};

/// The longest task name, in Unicode scalar values.
pub const MAX_NAME_CHARS: usize = 200;

fn bad_request(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::new(ErrorKind::BadRequest, message)
}

fn unprocessable(message: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::new(ErrorKind::Unprocessable, message)
}

/// Accepts `application/json`, with parameters such as `; charset=utf-8`, in any letter case.
pub fn check_json_content_type(content_type: Option<&[u8]>) -> Result<(), ApiError> {
    let is_json = content_type
        .and_then(|value| std::str::from_utf8(value).ok())
        .map(|value| value.split(';').next().unwrap_or("").trim())
        .is_some_and(|media| media.eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::of(ErrorKind::UnsupportedMediaType))
    }
}

/// Rejects a body longer than [`crate::MAX_BODY_BYTES`] from its `content-length` alone.
pub fn check_content_length(content_length: Option<u64>) -> Result<(), ApiError> {
    match content_length {
        Some(len) if len > crate::MAX_BODY_BYTES as u64 => {
            Err(ApiError::of(ErrorKind::PayloadTooLarge))
        }
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
    #[serde(default)]
    done: bool,
}

#[derive(Deserialize)]
struct ReplaceBody {
    name: String,
    done: bool,
}

/// Parses and validates a `POST /tasks` body: `name` required, `done` optional (false).
pub fn parse_new_task(body: &[u8]) -> Result<NewTask, ApiError> {
    let CreateBody { name, done } = parse_object(body)?;
    validate_name(&name)?;
    Ok(NewTask { name, done })
}

/// Parses and validates a `PUT /tasks/{id}` body: both fields required.
pub fn parse_task_update(body: &[u8]) -> Result<TaskUpdate, ApiError> {
    let ReplaceBody { name, done } = parse_object(body)?;
    validate_name(&name)?;
    Ok(TaskUpdate { name, done })
}

/// A request body type: parsed from the raw bytes, with the contract's 400/422 split.
/// Reads a request body from a framework's stream of chunks, the contract's way: at most
/// [`crate::MAX_BODY_BYTES`] (413 past it), at most [`crate::BODY_READ_TIMEOUT`] without a new
/// chunk (408), and a transport error (a bad chunk, a reset) is a 400. Every stack reads its
/// bodies through this.
pub async fn read_body<S, C, E>(mut chunks: S) -> Result<Vec<u8>, ApiError>
where
    S: futures_util::Stream<Item = Result<C, E>> + Unpin,
    C: AsRef<[u8]>,
{
    use futures_util::StreamExt as _;
    let mut body = Vec::new();
    loop {
        match tokio::time::timeout(crate::BODY_READ_TIMEOUT, chunks.next()).await {
            Err(_) => return Err(ApiError::of(ErrorKind::RequestTimeout)),
            Ok(None) => return Ok(body),
            Ok(Some(Err(_))) => {
                return Err(bad_request("the request body could not be read"));
            }
            Ok(Some(Ok(chunk))) => {
                let chunk = chunk.as_ref();
                if body.len() + chunk.len() > crate::MAX_BODY_BYTES {
                    return Err(ApiError::of(ErrorKind::PayloadTooLarge));
                }
                body.extend_from_slice(chunk);
            }
        }
    }
}

pub trait FromJsonBody: Sized {
    fn from_json_body(body: &[u8]) -> Result<Self, ApiError>;
}

impl FromJsonBody for NewTask {
    fn from_json_body(body: &[u8]) -> Result<Self, ApiError> {
        parse_new_task(body)
    }
}

impl FromJsonBody for TaskUpdate {
    fn from_json_body(body: &[u8]) -> Result<Self, ApiError> {
        parse_task_update(body)
    }
}

/// 400 for anything that is not JSON; 422 for JSON that is not an object of the right shape.
fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde would accept an array for a struct; the contract wants an object.
    let starts_as_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let typed = if starts_as_object {
        match serde_json::from_slice(body) {
            Ok(value) => return Ok(value),
            Err(err) => Some(err),
        }
    } else {
        None
    };
    // The typed parse stops at the first problem, which may be a type error in a body that is
    // not JSON at all (`{"name":[[[`), or a limit of serde_json's in a body that is (`1e400`,
    // nesting deeper than 128). Tell "not JSON" (400) from "JSON, but not a task" (422) by the
    // grammar alone: `IgnoredAny` checks it with no depth limit and no number range, but not
    // the text's UTF-8, hence the first check.
    if let Err(err) = std::str::from_utf8(body) {
        return Err(bad_request(format!(
            "the request body is not valid JSON: invalid UTF-8 at byte {}",
            err.valid_up_to()
        )));
    }
    if let Err(err) = serde_json::from_slice::<IgnoredAny>(body) {
        return Err(not_json(&err));
    }
    Err(match typed {
        Some(err) => unprocessable(format!("invalid task: {err}")),
        None => unprocessable("the request body must be a JSON object"),
    })
}

fn not_json(err: &serde_json::Error) -> ApiError {
    bad_request(format!("the request body is not valid JSON: {err}"))
}

/// The characters of Unicode's general category Cf (format characters, such as U+200B ZERO
/// WIDTH SPACE and U+FEFF), as of Unicode 18: invisible, so a name of nothing else is empty.
const FORMAT_CHARACTERS: [(char, char); 21] = [
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` shows nothing: Unicode `White_Space` or general category Cf.
fn is_blank(c: char) -> bool {
    c.is_whitespace() || FORMAT_CHARACTERS.iter().any(|&(a, b)| (a..=b).contains(&c))
}

/// Names are stored verbatim; they must hold something visible (not only white space or
/// format characters), fit in [`MAX_NAME_CHARS`], and hold no NUL (PostgreSQL's `TEXT`
/// cannot store one).
pub fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.chars().all(is_blank) {
        return Err(unprocessable(
            "name must not be empty or only white space and invisible characters",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(unprocessable("name must be at most 200 characters long"));
    }
    if name.contains('\0') {
        return Err(unprocessable("name must not contain the NUL character"));
    }
    Ok(())
}

/// Parses the `{id}` path segment: a base-10 integer that fits in an `i64`.
pub fn parse_id(segment: &str) -> Result<i64, ApiError> {
    segment
        .parse::<i64>()
        .map_err(|_| bad_request("the task id must be a base-10 integer that fits in 64 bits"))
}

/// `GET /tasks?limit=L&offset=O`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: i64,
    pub offset: i64,
}

impl ListQuery {
    pub fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        Ok(Self {
            limit: int_param(query, "limit", 1, 1000, 100)?,
            offset: int_param(query, "offset", 0, i64::MAX, 0)?,
        })
    }
}

/// `GET /sleep?ms=N`: the number of milliseconds to wait.
pub fn parse_sleep(query: Option<&str>) -> Result<u64, ApiError> {
    int_param(query, "ms", 0, 10_000, 2).map(|ms| ms as u64)
}

/// `GET /fibonacci?max=N`: the bound.
pub fn parse_fibonacci(query: Option<&str>) -> Result<u64, ApiError> {
    int_param(query, "max", 1, 1 << 62, 100_000_000).map(|max| max as u64)
}

/// Reads one integer query parameter (the first occurrence), percent-decoded, within
/// `min..=max`; absent means `default`; anything else is a 400 naming the parameter.
fn int_param(
    query: Option<&str>,
    key: &str,
    min: i64,
    max: i64,
    default: i64,
) -> Result<i64, ApiError> {
    let Some(raw) = query
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find_map(|(k, v)| (k == key).then_some(v))
    else {
        return Ok(default);
    };
    raw.parse::<i64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            bad_request(format!(
                "query parameter {key} must be an integer from {min} to {max}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `parse` on `input` and compares the outcome's status (or success) with `expected`.
    fn check<T: std::fmt::Debug>(
        parse: impl Fn(&[u8]) -> Result<T, ApiError>,
        input: &str,
        expected: u16,
    ) {
        let got = match parse(input.as_bytes()) {
            Ok(_) => 200,
            Err(err) => err.status(),
        };
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn create_bodies() {
        let long = format!(r#"{{"name":"{}"}}"#, "é".repeat(200));
        let too_long = format!(r#"{{"name":"{}"}}"#, "é".repeat(201));
        let deep = format!(
            r#"{{"name":"a","x":{}{}}}"#,
            "[".repeat(1000),
            "]".repeat(1000)
        );
        let cases: &[(&str, u16)] = &[
            (r#"{"name":"a"}"#, 200),
            (r#"{"name":"a","done":true,"other":[1,{"x":null}]}"#, 200),
            (r#"  {"name":" padded "}  "#, 200),
            (&long, 200),
            (&too_long, 422),
            ("", 400),
            ("   ", 400),
            ("{", 400),
            (r#"{"name":"a"} x"#, 400),
            (r#"{"name":'a'}"#, 400),
            ("nope", 400),
            ("[\"a\",true]", 422),
            ("\"a\"", 422),
            ("null", 422),
            ("42", 422),
            ("{}", 422),
            (r#"{"done":true}"#, 422),
            (r#"{"name":1}"#, 422),
            (r#"{"name":null}"#, 422),
            (r#"{"name":"a","done":"yes"}"#, 422),
            (r#"{"name":"a","done":null}"#, 422),
            (r#"{"name":"a","name":"b"}"#, 422),
            (r#"{"name":""}"#, 422),
            (r#"{"name":" \t\n\u00a0"}"#, 422),
            (r#"{"name":"a\u0000b"}"#, 422),
            // Not JSON, though the typed parse first meets a type error: 400.
            (r#"{"name":[[["#, 400),
            (r#"{"name":1"#, 400),
            // JSON beyond serde_json's number range or depth: 422 where it matters, ignored
            // under an unknown key.
            (r#"{"name":"a","done":1e400}"#, 422),
            (r#"{"name":-99999999999999999999999}"#, 422),
            (r#"{"name":"a","x":1e400}"#, 200),
            (&deep, 200),
        ];
        for (input, expected) in cases {
            check(parse_new_task, input, *expected);
        }
    }

    #[test]
    fn invalid_utf8_is_not_json() {
        let err = parse_new_task(b"{\"name\":\"\xff\xfe\"}").unwrap_err();
        assert_eq!(err.status(), 400);
    }

    #[test]
    fn replace_bodies_need_both_fields() {
        check(parse_task_update, r#"{"name":"a","done":false}"#, 200);
        check(parse_task_update, r#"{"name":"a"}"#, 422);
        check(parse_task_update, r#"{"done":true}"#, 422);
    }

    #[test]
    fn names_are_kept_verbatim() {
        let task = parse_new_task(br#"{"name":"  Robert'); DROP TABLE tasks;-- \"x\" "}"#).unwrap();
        assert_eq!(task.name, "  Robert'); DROP TABLE tasks;-- \"x\" ");
        assert!(!task.done);
    }

    #[test]
    fn content_types() {
        let cases: &[(Option<&str>, bool)] = &[
            (Some("application/json"), true),
            (Some("application/json; charset=utf-8"), true),
            (Some("Application/JSON ;charset=UTF-8"), true),
            (None, false),
            (Some(""), false),
            (Some("text/plain"), false),
            (Some("application/jsonx"), false),
            (Some("application/x-www-form-urlencoded"), false),
        ];
        for (ct, ok) in cases {
            assert_eq!(
                check_json_content_type(ct.map(str::as_bytes)).is_ok(),
                *ok,
                "{ct:?}"
            );
        }
    }

    #[test]
    fn ids() {
        for (segment, ok) in [
            ("1", true),
            ("-5", true),
            ("0", true),
            ("9223372036854775807", true),
            ("9223372036854775808", false),
            ("abc", false),
            ("1.5", false),
            ("", false),
            ("1e3", false),
        ] {
            assert_eq!(parse_id(segment).is_ok(), ok, "{segment:?}");
        }
    }

    #[test]
    fn query_parameters() {
        let list = |q: &str| ListQuery::parse(Some(q)).map_err(|e| e.status());
        assert_eq!(
            ListQuery::parse(None),
            Ok(ListQuery {
                limit: 100,
                offset: 0
            })
        );
        assert_eq!(
            list("limit=20&offset=40"),
            Ok(ListQuery {
                limit: 20,
                offset: 40
            })
        );
        assert_eq!(
            list("offset=3&unknown=x"),
            Ok(ListQuery {
                limit: 100,
                offset: 3
            })
        );
        assert_eq!(
            list("limit=%31%30"),
            Ok(ListQuery {
                limit: 10,
                offset: 0
            })
        );
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=",
            "limit=ten",
            "offset=-1",
            "limit=1.0",
            "offset=99999999999999999999",
        ] {
            assert_eq!(list(bad), Err(400), "{bad}");
        }
        assert_eq!(parse_sleep(None), Ok(2));
        assert_eq!(parse_sleep(Some("ms=10000")), Ok(10_000));
        assert!(parse_sleep(Some("ms=10001")).is_err());
        assert_eq!(parse_fibonacci(None), Ok(100_000_000));
        assert_eq!(
            parse_fibonacci(Some("max=4611686018427387904")),
            Ok(1 << 62)
        );
        assert!(parse_fibonacci(Some("max=4611686018427387905")).is_err());
        assert!(parse_fibonacci(Some("max=0")).is_err());
    }
}
