//! What reports show of an HTTP/2 exchange: its endpoint (gRPC service and method, or
//! method and templated path) and status. HTTP/2 writes no Zeek log (its [`super::PROTOCOL`]
//! has none); the module is named after its HTTP/1 counterpart, which has both.

use super::grpc;
use crate::l7::summary::template_path;
use crate::model::{Exchange, Summary};

/// The exchange's endpoint and status; 5xx, a gRPC status other than OK, or a reset other
/// than NO_ERROR is a failure.
pub(super) fn summarize(ex: &Exchange) -> Summary {
    let f = &ex.fields;
    let text = |n: &str| f.text(n).map(|t| String::from_utf8_lossy(t).into_owned());
    let grpc_status = f.u64("grpc_status");
    let endpoint = match (text("grpc_service"), text("grpc_method"), text("method")) {
        (Some(s), Some(m), _) => format!("grpc {s}/{m}"),
        (_, _, Some(m)) => match f.text("uri") {
            Some(u) => format!("{m} {}", template_path(u)),
            None => m,
        },
        _ if f.get("headers_unknown").is_some() => "(headers unknown)".into(),
        _ => "(no request)".into(),
    };
    let code = f.u64("status_code");
    let reset = f.text("reset_code").filter(|c| *c != b"NO_ERROR");
    let status = match (grpc_status, code, reset) {
        (Some(g), _, _) => Some(grpc::status_name(g).to_string()),
        (None, Some(c), _) => Some(c.to_string()),
        (None, None, Some(r)) => Some(format!("RST {}", String::from_utf8_lossy(r))),
        _ => None,
    };
    Summary {
        endpoint,
        status,
        failed: code.is_some_and(|c| c >= 500)
            || grpc_status.is_some_and(|g| g != 0)
            || reset.is_some(),
    }
}
