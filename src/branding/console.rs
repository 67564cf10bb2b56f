//! The console: one HTML page at `/console` on the API host, on every client portal and on
//! every agency portal (slug host or verified custom domain), wearing the portal tenant's
//! colours there, and the app
//! itself (`console/src`, bundled by esbuild in `scripts/setup.sh` into `console/dist`, embedded
//! here). The page loads it under a CSP that allows only this origin's scripts and styles, with
//! no inline script or style at all.
//!
//! The bundle is embedded rather than served from Workers static assets: under `wrangler dev`,
//! `[assets]` put an asset router in front of every request, which cost the widget gate about a
//! third of its throughput (measured A/B: 695-807 vs 1,048-1,216 req/s).

use serde_json::Value;

use super::portal::{document_head, escape_html, html_page};
use crate::access::Site;
use crate::branding;
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::http::{Method, Request, Response};
use crate::platform::ports::Platform;
use crate::platform::Ctx;

pub const SCRIPT: &str = include_str!("../../console/dist/console.js");
pub const STYLE: &str = include_str!("../../console/dist/console.css");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `GET /console` (the app routes in the fragment) and `GET /console/theme.css`.
pub async fn page<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &Site, rest: &[&str]) -> ApiResult<Response> {
    if !matches!(req.method, Method::Get | Method::Head) {
        return Err(ApiError::MethodNotAllowed);
    }
    match rest {
        [] => Ok(shell(site, &api_origin(ctx, req, site))),
        ["theme.css"] => theme(ctx, site).await,
        ["assets", "console.js"] => Ok(asset("text/javascript; charset=utf-8", SCRIPT)),
        ["assets", "console.css"] => Ok(asset("text/css; charset=utf-8", STYLE)),
        _ => Err(ApiError::NotFound),
    }
}

fn asset(content_type: &str, body: &'static str) -> Response {
    Response::text(200, content_type, body)
        .with_header("cache-control", "public, max-age=300")
        .with_header("x-content-type-options", "nosniff")
}

/// Where the API host answers, for what only it serves (the widget's script and routes): this
/// origin on the API host; on a portal, the first configured API host, on the portal's scheme
/// and (when the entry names none) its port.
fn api_origin<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, site: &Site) -> String {
    let Some(host) = site.portal_host() else { return String::new() };
    let Some(api) = ctx.cfg.api_hosts.first() else { return String::new() };
    let port = host.rsplit_once(':').map(|(_, p)| p).filter(|p| p.bytes().all(|b| b.is_ascii_digit()));
    match port {
        Some(p) if !api.contains(':') => format!("{}://{api}:{p}", req.scheme),
        _ => format!("{}://{api}", req.scheme),
    }
}

fn shell(site: &Site, api_origin: &str) -> Response {
    let (kind, id, name) = match site {
        Site::Api => ("api", "", ""),
        Site::ClientPortal { client, .. } => ("client", client.id.as_str(), client.name.as_str()),
        Site::AgencyPortal { agency, .. } => ("agency", agency.id.as_str(), agency.name.as_str()),
    };
    let title = if name.is_empty() { "Gatehouse console".to_string() } else { format!("{name} console") };
    let (id, name) = (escape_html(id), escape_html(name));
    let head = document_head(&title);
    let api = escape_html(api_origin);
    let html = format!(
        r#"{head}<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/console.css">
<link rel="stylesheet" href="/console/theme.css">
<script type="module" src="/console/assets/console.js"></script>
</head>
<body>
<div id="gh-console" data-site="{kind}" data-tenant-id="{id}" data-name="{name}" data-api-origin="{api}"><noscript>The console needs JavaScript.</noscript></div>
</body>
</html>
"#
    );
    html_page(CSP, html).with_header("cache-control", "no-cache")
}

/// The site's colours as CSS variables: a portal client's effective branding, else the defaults.
async fn theme<P: Platform>(ctx: &Ctx<'_, P>, site: &Site) -> ApiResult<Response> {
    let (primary, secondary) = match site {
        Site::Api => (branding::DEFAULT_PRIMARY.to_string(), branding::DEFAULT_SECONDARY.to_string()),
        Site::ClientPortal { client, .. } => {
            let b = branding::values(&branding::effective(ctx, &client.id, &client.agency_id).await?);
            // Colours were validated as hex on the way in; re-check so nothing else reaches CSS.
            let color = |k: &str, d: &str| {
                b.get(k).and_then(Value::as_str).filter(|v| branding::parse_color(v).is_ok()).unwrap_or(d).to_string()
            };
            (color("primary_color", branding::DEFAULT_PRIMARY), color("secondary_color", branding::DEFAULT_SECONDARY))
        }
        Site::AgencyPortal { agency, .. } => {
            let b = branding::values(&branding::of_agency(ctx, &agency.id).await?);
            let color = |k: &str, d: &str| {
                b.get(k).and_then(Value::as_str).filter(|v| branding::parse_color(v).is_ok()).unwrap_or(d).to_string()
            };
            (color("primary_color", branding::DEFAULT_PRIMARY), color("secondary_color", branding::DEFAULT_SECONDARY))
        }
    };
    // A tenant picks any colour; text on it is black or white, whichever contrasts more (at
    // least 4.58:1 either way), and links fall back to a dark blue where the colour is too light
    // to read on white (WCAG AA asks 4.5:1).
    let on = |c: &str| if contrast(c, "#ffffff") >= contrast(c, "#000000") { "#ffffff" } else { "#000000" };
    let link = if contrast(&primary, "#ffffff") >= 4.5 { primary.as_str() } else { "#1e3a8a" };
    let css = format!(
        ":root {{ --gh-primary: {primary}; --gh-on-primary: {}; --gh-link: {link}; --gh-secondary: {secondary}; \
         --gh-on-secondary: {}; }}\n",
        on(&primary),
        on(&secondary)
    );
    Ok(Response::text(200, "text/css; charset=utf-8", css).with_header("cache-control", "no-cache"))
}

/// WCAG 2 contrast ratio of two `#rgb`/`#rrggbb` colours (1 when either is not one).
pub fn contrast(a: &str, b: &str) -> f64 {
    let (Some(la), Some(lb)) = (luminance(a), luminance(b)) else { return 1.0 };
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

fn luminance(hex: &str) -> Option<f64> {
    let h = hex.strip_prefix('#')?;
    let full: String = match h.len() {
        3 => h.chars().flat_map(|c| [c, c]).collect(),
        6 => h.to_string(),
        _ => return None,
    };
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(full.get(i..i + 2)?, 16).ok()?) / 255.0;
        Some(if v <= 0.03928 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) })
    };
    Some(0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contrast_follows_wcag() {
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!((contrast("#fff", "#ffffff") - 1.0).abs() < 1e-9);
        // WCAG's own example pair: #777 on white is 4.48:1, just under AA.
        assert!((contrast("#777777", "#ffffff") - 4.48).abs() < 0.01);
        assert_eq!(contrast("red", "#fff"), 1.0);
    }
}
