//! White-label portals: a client's branded page on its own host. The page is a small static
//! shell rendered here with the client's effective branding; `portal/portal.js` then drives
//! login and the dashboard through the JSON API on the same host.

use serde_json::Value;

use crate::access::store::ClientRow;
use crate::branding::{self, PORTAL_ROOT};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::{Method, Request, Response};
use crate::platform::ports::Platform;
use crate::platform::Ctx;

pub const SCRIPT: &str = include_str!("../../portal/dist/portal.js");
pub const STYLE: &str = include_str!("../../portal/dist/portal.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The head every page of ours opens with: doctype, charset, viewport and (escaped) title.
pub fn document_head(title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n",
        escape_html(title)
    )
}

/// A page under `csp` that no other site may frame.
pub fn html_page(csp: &str, html: String) -> Response {
    Response::text(200, "text/html; charset=utf-8", html)
        .with_header("content-security-policy", csp)
        .with_header("x-frame-options", "DENY")
        .with_header("referrer-policy", "same-origin")
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Any non-API path on a client's portal host.
pub async fn page<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    client: &ClientRow,
    path: &[&str],
) -> ApiResult<Response> {
    if !matches!(req.method, Method::Get | Method::Head) {
        return Err(ApiError::MethodNotAllowed);
    }
    match path {
        ["portal.js"] => Ok(static_asset("application/javascript; charset=utf-8", SCRIPT)),
        ["portal.css"] => Ok(static_asset("text/css; charset=utf-8", STYLE)),
        // `invite` is where a mailed invitation leads: the token is in the fragment.
        [] | ["dashboard"] | ["login"] | ["invite"] => render(ctx, client).await,
        _ => Err(ApiError::NotFound),
    }
}

fn static_asset(content_type: &str, body: &'static str) -> Response {
    Response::text(200, content_type, body).with_header("cache-control", "public, max-age=300")
}

async fn render<P: Platform>(ctx: &Ctx<'_, P>, c: &ClientRow) -> ApiResult<Response> {
    let b = branding::values(&branding::effective(ctx, &c.id, &c.agency_id).await?);
    let text = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    // Colors were validated as hex on the way in; re-check so nothing else reaches the CSS.
    let color = |k: &str, d: &str| {
        let v = text(k);
        if branding::parse_color(&v).is_ok() {
            v
        } else {
            d.to_string()
        }
    };
    let primary = color("primary_color", branding::DEFAULT_PRIMARY);
    let secondary = color("secondary_color", branding::DEFAULT_SECONDARY);
    let asset = |k: &str| {
        b.get(k)
            .and_then(Value::as_str)
            .filter(|id| crate::platform::ids::looks_like_id(id, "fil"))
            .map(|id| format!("/assets/{id}"))
    };
    let logo = asset("logo_file_id")
        .map(|u| format!(r#"<img class="gh-logo" src="{u}" alt="{} logo">"#, escape_html(&c.name)))
        .unwrap_or_else(|| {
            format!(
                r#"<span class="gh-logo gh-monogram" aria-hidden="true">{}</span>"#,
                escape_html(&c.name.chars().next().unwrap_or('•').to_string())
            )
        });
    let favicon = asset("favicon_file_id")
        .or_else(|| asset("logo_file_id"))
        .map(|u| format!(r#"<link rel="icon" href="{u}">"#))
        .unwrap_or_default();
    let tagline = text("tagline");
    let support = [text("support_email"), text("support_phone")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .map(|s| escape_html(&s))
        .collect::<Vec<_>>()
        .join(" · ");
    // Stored custom CSS was sanitised and scoped when saved; it cannot contain `<`.
    let custom_css = text("custom_css").replace('<', "");
    let root_class = &PORTAL_ROOT[1..];
    let html = format!(
        r#"{head}{favicon}
<link rel="stylesheet" href="/portal.css">
<style>:root {{ --gh-primary: {primary}; --gh-secondary: {secondary}; }}</style>
<style id="gh-custom-css">{custom_css}</style>
</head>
<body>
<div class="{root_class}" id="gh-portal" data-client-id="{id}" data-client-name="{name}">
  <header class="gh-header">
    {logo}
    <div><h1 class="gh-name">{name}</h1>{tagline_html}</div>
  </header>
  <main id="gh-app" aria-live="polite"><noscript>This portal needs JavaScript.</noscript></main>
  <footer class="gh-footer">{support}</footer>
</div>
<script src="/portal.js" defer></script>
</body>
</html>
"#,
        head = document_head(&c.name),
        name = escape_html(&c.name),
        id = escape_html(&c.id),
        tagline_html = if tagline.is_empty() {
            String::new()
        } else {
            format!(r#"<p class="gh-tagline">{}</p>"#, escape_html(&tagline))
        },
    );
    Ok(html_page(CSP, html))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            escape_html(r#"<script>"a"&'b'</script>"#),
            "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;"
        );
    }
}
