//! Cross-cutting request handling: body size and read-time limits, and the access log.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use poem::{Body, Endpoint, IntoResponse, Request, Response, error::ReadBodyError, http::StatusCode};

use poem_openapi::OperationId;

use crate::http::{metrics, problem::ApiError};

/// Bodies over `max` (`audio_max` for audio uploads) are refused with 413 before any handler sees
/// them. A declared length is checked up front; a chunked body is read up to the limit, since it
/// has no length to check.
///
/// A body that stops arriving, with no data for `read_timeout`, fails to read; the request is then
/// answered 408, so a client trickling a body cannot hold a handler and its connection for ever.
pub async fn limit_body<E: Endpoint>(
    next: E,
    mut req: Request,
    max: usize,
    audio_max: usize,
    document_max: usize,
    read_timeout: Duration,
) -> poem::Result<Response> {
    let path = req.uri().path().trim_end_matches('/');
    let max = if path.starts_with("/api/transcriptions/") && path.ends_with("/audio") {
        audio_max
    } else if (path.starts_with("/api/patients/") && path.ends_with("/documents"))
        || path == "/api/products/imports"
        || path == "/api/hl7"
    {
        document_max
    } else {
        max
    };
    let too_large = || {
        poem::Error::from(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than the {max}-byte limit"),
        ))
    };
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let chunked = req.headers().contains_key(poem::http::header::TRANSFER_ENCODING);
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    let stalled = if chunked || declared.is_some_and(|len| len > 0) {
        let (body, stalled) = with_read_timeout(req.take_body(), read_timeout);
        req.set_body(body);
        Some(stalled)
    } else {
        None
    };
    let timed_out = || {
        poem::Error::from_string(
            format!("the request body stopped arriving: no data for {} s", read_timeout.as_secs()),
            StatusCode::REQUEST_TIMEOUT,
        )
    };
    let did_stall = || stalled.as_ref().is_some_and(|s| s.load(Ordering::Relaxed));
    if declared.is_none() && chunked {
        let bytes = req.take_body().into_bytes_limit(max).await.map_err(|e| match e {
            ReadBodyError::PayloadTooLarge => too_large(),
            _ if did_stall() => timed_out(),
            other => poem::Error::from_string(
                format!("could not read the request body: {other}"),
                StatusCode::BAD_REQUEST,
            ),
        })?;
        req.set_body(Body::from(bytes));
    }
    let result = next.call(req).await.map(IntoResponse::into_response);
    // Whatever the handler made of the failed read (most say 400), the cause was the client's.
    let failed = match &result {
        Ok(resp) => resp.status().is_client_error() || resp.status().is_server_error(),
        Err(_) => true,
    };
    if failed && did_stall() {
        return Err(timed_out());
    }
    result
}

/// Wraps `body` so that waiting more than `timeout` for its next piece fails the read. The flag
/// tells whether that happened.
fn with_read_timeout(body: Body, timeout: Duration) -> (Body, Arc<AtomicBool>) {
    let stalled = Arc::new(AtomicBool::new(false));
    let flag = stalled.clone();
    let chunks = Box::pin(body.into_bytes_stream());
    let stream = futures_util::stream::unfold(Some(chunks), move |chunks| {
        let flag = flag.clone();
        async move {
            let mut chunks = chunks?;
            match tokio::time::timeout(timeout, chunks.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(chunks))),
                Ok(None) => None,
                Err(_) => {
                    flag.store(true, Ordering::Relaxed);
                    let err = io::Error::new(io::ErrorKind::TimedOut, "the request body stopped arriving");
                    Some((Err(err), None))
                }
            }
        }
    });
    (Body::from_bytes_stream(stream), stalled)
}

/// One log line and the metrics per request, which runs with its own memory of the patients it
/// reached (`patient_access::per_request`). The path is logged with numeric segments masked and
/// without the query string, since both can identify a patient; metrics are labelled by operation.
pub async fn observe<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let method = req.method().clone();
    let path = mask_ids(req.uri().path());
    let started = Instant::now();
    let call = Box::pin(async { next.call(req).await.map(IntoResponse::into_response) });
    let result = crate::service::patient_access::per_request(call).await;
    let (status, operation) = match &result {
        Ok(resp) => (resp.status(), resp.data::<OperationId>()),
        Err(err) => (err.status(), err.data::<OperationId>()),
    };
    let elapsed = started.elapsed().as_secs_f64();
    metrics::record_request(
        method.as_str(),
        operation.map_or("unmatched", |o| o.0),
        status.as_u16(),
        elapsed,
    );
    tracing::info!(
        method = %method,
        path = %path,
        status = status.as_u16(),
        duration_ms = elapsed * 1000.0,
        "request"
    );
    result
}

fn mask_ids(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            let looks_like_id = !segment.is_empty()
                && (segment.bytes().all(|b| b.is_ascii_digit())
                    || (segment.len() == 36 && segment.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')));
            if looks_like_id { "{id}" } else { segment }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Nothing the API answers may be kept by a browser or proxy cache: most answers carry PHI.
/// The explorer's static files are the exception.
pub async fn no_store<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let cacheable = req.uri().path().starts_with("/api/docs");
    let mut resp = next.call(req).await.map(IntoResponse::into_response)?;
    if !cacheable {
        resp.headers_mut()
            .insert(poem::http::header::CACHE_CONTROL, poem::http::HeaderValue::from_static("no-store"));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::mask_ids;

    #[test]
    fn masks_numeric_and_uuid_segments_only() {
        assert_eq!(mask_ids("/api/patients/42/encounters/"), "/api/patients/{id}/encounters/");
        assert_eq!(
            mask_ids("/api/transcriptions/0192f0c3-7c1e-7a55-9d33-2b8f6a0e4c11/"),
            "/api/transcriptions/{id}/"
        );
        assert_eq!(mask_ids("/api/health/"), "/api/health/");
    }
}
