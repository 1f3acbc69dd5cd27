//! The HTTP-layer rules of the contract that frameworks leave to the application, decided once
//! and applied by every stack the same way (each server's middleware, fairing or extractor
//! calls these):
//!
//! - a request target (path and query as sent) holds only ASCII: raw bytes outside it are a
//!   400 (percent-encode them);
//! - routes match the path as sent: a percent-escape never stands for a route's own characters
//!   (`/%74asks` is not `/tasks`: 404), while a task id is percent-decoded once, then parsed
//!   (`/tasks/%31` is task 1);
//! - a request carries exactly one `Host` header, or gets 400 (RFC 9112 §3.2 asks it of
//!   HTTP/1.1; it is asked of HTTP/1.0 too, since not every framework tells them apart);
//! - the only transfer coding a request body may use is `chunked` alone (others: 400);
//! - the request line's method is the method: no `_method` field or override header changes it.

use std::borrow::Cow;

use crate::error::{ApiError, ErrorKind};
use crate::input::parse_id;

fn bad_request(message: &'static str) -> ApiError {
    ApiError::new(ErrorKind::BadRequest, Cow::Borrowed(message))
}

/// What the rules look at in a request's head.
#[derive(Debug, Clone)]
pub struct Head<'a> {
    /// The request target as sent (path and query).
    pub target: &'a [u8],
    /// How many `Host` headers it has.
    pub hosts: usize,
    /// Its `transfer-encoding` headers' values, joined with `,` when there are several.
    pub transfer_encoding: Option<Cow<'a, [u8]>>,
}

impl<'a> Head<'a> {
    /// The head of a request with this `target`, `Host` headers and `transfer-encoding`
    /// header values.
    pub fn new(
        target: &'a [u8],
        hosts: usize,
        mut transfer_encodings: impl Iterator<Item = &'a [u8]>,
    ) -> Self {
        let transfer_encoding = transfer_encodings.next().map(|first| {
            let rest: Vec<&[u8]> = transfer_encodings.collect();
            if rest.is_empty() {
                Cow::Borrowed(first)
            } else {
                Cow::Owned(
                    std::iter::once(first)
                        .chain(rest)
                        .collect::<Vec<_>>()
                        .join(&b","[..]),
                )
            }
        });
        Self {
            target,
            hosts,
            transfer_encoding,
        }
    }
}

/// Checks a request's head against the rules above; the error is the 400 to answer.
pub fn check_head(head: &Head<'_>) -> Result<(), ApiError> {
    if !head.target.is_ascii() {
        return Err(bad_request(
            "the request target must be ASCII: percent-encode other characters",
        ));
    }
    if head.hosts != 1 {
        return Err(bad_request("a request must have exactly one Host header"));
    }
    if let Some(coding) = &head.transfer_encoding
        && !coding.trim_ascii().eq_ignore_ascii_case(b"chunked")
    {
        return Err(bad_request(
            "the only transfer coding a request body may use is chunked",
        ));
    }
    Ok(())
}

/// A task id path segment as sent: percent-decoded once, then parsed (400 unless the result
/// is a base-10 integer that fits in an `i64`).
pub fn parse_id_segment(raw: &str) -> Result<i64, ApiError> {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    parse_id(&decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(target: &'static [u8], hosts: usize, te: &[&'static [u8]]) -> Head<'static> {
        Head::new(target, hosts, te.iter().copied())
    }

    #[test]
    fn heads_follow_the_rules() {
        let ok = [
            head(b"/tasks?limit=1", 1, &[]),
            head(b"/t%C3%A4sks", 1, &[]),
            head(b"/tasks", 1, &[b"chunked"]),
            head(b"/tasks", 1, &[b" Chunked "]),
        ];
        for h in &ok {
            assert!(check_head(h).is_ok(), "{h:?}");
        }
        let bad = [
            head("/täsks".as_bytes(), 1, &[]),
            head("/health?x=é".as_bytes(), 1, &[]),
            head(b"/", 0, &[]),
            head(b"/", 2, &[]),
            head(b"/tasks", 1, &[b"gzip, chunked"]),
            head(b"/tasks", 1, &[b"gzip", b"chunked"]),
            head(b"/tasks", 1, &[b"chunked", b"chunked"]),
        ];
        for h in &bad {
            assert_eq!(check_head(h).map_err(|e| e.status()), Err(400), "{h:?}");
        }
    }

    #[test]
    fn ids_are_decoded_once() {
        assert_eq!(parse_id_segment("%31").ok(), Some(1));
        assert_eq!(parse_id_segment("%2B1").ok(), Some(1));
        assert_eq!(parse_id_segment("12").ok(), Some(12));
        for bad in ["%2531", "%FF", "1%20", "%"] {
            assert_eq!(
                parse_id_segment(bad).map_err(|e| e.status()),
                Err(400),
                "{bad}"
            );
        }
    }
}
