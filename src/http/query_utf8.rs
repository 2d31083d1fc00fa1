//! Query strings must decode to UTF-8: poem would replace bad bytes with U+FFFD and carry on, so a
//! malformed search would quietly become a different one.

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

use crate::http::problem::ApiError;

pub async fn require_utf8_query<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    if req.uri().query().is_some_and(|q| std::str::from_utf8(&percent_decode(q)).is_err()) {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "the query string is not valid UTF-8").into());
    }
    next.call(req).await.map(IntoResponse::into_response)
}

fn percent_decode(query: &str) -> Vec<u8> {
    let bytes = query.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn decodes_escapes_and_keeps_malformed_ones() {
        assert_eq!(percent_decode("a=%C3%A9&b=%zz%4"), b"a=\xc3\xa9&b=%zz%4");
        assert!(std::str::from_utf8(&percent_decode("search=%FF%FE")).is_err());
    }
}
