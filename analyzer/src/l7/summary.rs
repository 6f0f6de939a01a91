//! Helpers for [`super::Protocol::summarize`]: turning what was asked for into an endpoint
//! name that groups alike requests.

/// Replaces identifier-like path segments with `{id}` and drops the query, so that
/// `/users/123?x=1` and `/users/456` count as one endpoint.
pub fn template_path(uri: &[u8]) -> String {
    let uri = String::from_utf8_lossy(uri);
    let path = uri.split(['?', '#']).next().unwrap_or("");
    // Absolute-form targets: keep only the path.
    let path = match path.find("://") {
        Some(i) => path[i + 3..].find('/').map_or("/", |j| &path[i + 3 + j..]),
        None => path,
    };
    let segs: Vec<String> = path
        .split('/')
        .map(|s| {
            let digits = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            let hexish = s.len() >= 12 && s.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-');
            if digits || hexish {
                "{id}".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    let t = segs.join("/");
    if t.is_empty() { "/".into() } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_templates() {
        assert_eq!(
            template_path(b"/users/123/orders/456?x=1"),
            "/users/{id}/orders/{id}"
        );
        assert_eq!(
            template_path(b"/item/3f2a9c1e-7b1d-4c1e-9a8b-1234567890ab"),
            "/item/{id}"
        );
        assert_eq!(template_path(b"/static/app.js"), "/static/app.js");
        assert_eq!(template_path(b"http://h.example/v1/7"), "/v1/{id}");
        assert_eq!(template_path(b""), "/");
    }
}
