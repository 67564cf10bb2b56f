//! Every route the router answers, as `(method, template)`: the request log's `route` field, and
//! the list the OpenAPI document and the router are both held to (`tests/api/routes.rs`). Path
//! parameters are named `{like_this}`; a `HEAD` is served wherever a `GET` is.

/// Every API route. A test parses the router and fails when the two differ.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/assets/{file_id}"),
    ("GET", "/api/files/signed/{id}"),
    ("GET", "/api/exports/signed/{id}"),
    ("GET", "/healthz"),
    ("GET", "/widget.js"),
    ("GET", "/openapi.json"),
    ("GET", "/api/agencies"),
    ("POST", "/api/agencies"),
    ("GET", "/api/agencies/{agency_id}"),
    ("PUT", "/api/agencies/{agency_id}"),
    ("GET", "/api/agencies/{agency_id}/domains"),
    ("POST", "/api/agencies/{agency_id}/domains"),
    ("POST", "/api/agencies/{agency_id}/domains/{domain_id}/verify"),
    ("DELETE", "/api/agencies/{agency_id}/domains/{domain_id}"),
    ("GET", "/api/clients"),
    ("POST", "/api/clients"),
    ("GET", "/api/clients/{client_id}"),
    ("PUT", "/api/clients/{client_id}"),
    ("GET", "/api/clients/{client_id}/usage"),
    ("GET", "/api/clients/{client_id}/metrics"),
    ("GET", "/api/clients/{client_id}/health"),
    ("GET", "/api/clients/{client_id}/preferences"),
    ("PATCH", "/api/clients/{client_id}/preferences"),
    ("DELETE", "/api/clients/{client_id}"),
    ("POST", "/api/clients/{client_id}/restore"),
    ("GET", "/api/clients/{client_id}/audit"),
    ("GET", "/api/clients/{client_id}/audit/export"),
    ("GET", "/api/clients/{client_id}/audit/verify"),
    ("GET", "/api/agencies/{agency_id}/audit"),
    ("GET", "/api/agencies/{agency_id}/audit/export"),
    ("GET", "/api/agencies/{agency_id}/audit/verify"),
    ("GET", "/api/admin/audit"),
    ("GET", "/api/admin/audit/export"),
    ("GET", "/api/admin/audit/verify"),
    ("GET", "/api/admin/tenants"),
    ("GET", "/api/admin/tenants/{tenant_id}"),
    ("GET", "/api/agencies/{agency_id}/templates"),
    ("POST", "/api/agencies/{agency_id}/templates"),
    ("GET", "/api/agencies/{agency_id}/templates/{template_id}"),
    ("POST", "/api/agencies/{agency_id}/templates/{template_id}/versions"),
    ("POST", "/api/agencies/{agency_id}/templates/{template_id}/push"),
    ("GET", "/api/clients/{client_id}/api-keys"),
    ("POST", "/api/clients/{client_id}/api-keys"),
    ("DELETE", "/api/clients/{client_id}/api-keys/{key_id}"),
    ("GET", "/api/agencies/{agency_id}/api-keys"),
    ("POST", "/api/agencies/{agency_id}/api-keys"),
    ("DELETE", "/api/agencies/{agency_id}/api-keys/{key_id}"),
    ("GET", "/api/clients/{client_id}/invitations"),
    ("POST", "/api/clients/{client_id}/invitations"),
    ("GET", "/api/agencies/{agency_id}/invitations"),
    ("DELETE", "/api/clients/{client_id}/invitations/{invitation_id}"),
    ("DELETE", "/api/agencies/{agency_id}/invitations/{invitation_id}"),
    ("POST", "/api/clients/{client_id}/invitations/{invitation_id}/resend"),
    ("POST", "/api/agencies/{agency_id}/invitations/{invitation_id}/resend"),
    ("GET", "/api/users"),
    ("POST", "/api/users"),
    ("POST", "/api/users/{user_id}/grant-access"),
    ("DELETE", "/api/users/{user_id}/revoke-access"),
    ("GET", "/api/clients/{client_id}/domains"),
    ("POST", "/api/clients/{client_id}/domains"),
    ("POST", "/api/clients/{client_id}/domains/check"),
    ("DELETE", "/api/clients/{client_id}/domains/{domain_id}"),
    ("POST", "/api/clients/{client_id}/domains/{domain_id}/verify"),
    ("GET", "/api/clients/{client_id}/files"),
    ("POST", "/api/clients/{client_id}/files"),
    ("GET", "/api/clients/{client_id}/files/{file_id}"),
    ("DELETE", "/api/clients/{client_id}/files/{file_id}"),
    ("GET", "/api/clients/{client_id}/exports"),
    ("POST", "/api/clients/{client_id}/exports"),
    ("GET", "/api/clients/{client_id}/exports/{export_id}"),
    ("POST", "/api/clients/{client_id}/exports/{export_id}/link"),
    ("POST", "/api/clients/{client_id}/files/{file_id}/sign"),
    ("POST", "/api/clients/{client_id}/files/{file_id}/revoke-links"),
    ("GET", "/api/clients/{client_id}/branding"),
    ("PUT", "/api/clients/{client_id}/branding"),
    ("POST", "/api/clients/{client_id}/branding/logo"),
    ("POST", "/api/clients/{client_id}/branding/favicon"),
    ("GET", "/api/agencies/{agency_id}/branding"),
    ("PUT", "/api/agencies/{agency_id}/branding"),
    ("POST", "/api/agencies/{agency_id}/branding/logo"),
    ("POST", "/api/agencies/{agency_id}/branding/favicon"),
    ("GET", "/api/clients/{client_id}/settings"),
    ("PUT", "/api/clients/{client_id}/settings"),
    ("POST", "/api/admin/settings/rotate"),
    ("GET", "/api/admin/shard-moves"),
    ("POST", "/api/admin/shard-moves"),
    ("GET", "/api/admin/shard-moves/{move_id}"),
    ("POST", "/api/admin/shard-moves/{move_id}/step"),
    ("POST", "/api/admin/shard-moves/{move_id}/cancel"),
    ("GET", "/api/clients/{client_id}/contacts"),
    ("POST", "/api/clients/{client_id}/contacts"),
    ("GET", "/api/clients/{client_id}/contacts/{contact_id}"),
    ("PATCH", "/api/clients/{client_id}/contacts/{contact_id}"),
    ("DELETE", "/api/clients/{client_id}/contacts/{contact_id}"),
    ("PUT", "/api/clients/{client_id}/contacts/{contact_id}/tags/{tag_id}"),
    ("DELETE", "/api/clients/{client_id}/contacts/{contact_id}/tags/{tag_id}"),
    ("GET", "/api/clients/{client_id}/contacts/{contact_id}/notes"),
    ("POST", "/api/clients/{client_id}/contacts/{contact_id}/notes"),
    ("DELETE", "/api/clients/{client_id}/contacts/{contact_id}/notes/{note_id}"),
    ("GET", "/api/clients/{client_id}/tags"),
    ("POST", "/api/clients/{client_id}/tags"),
    ("PATCH", "/api/clients/{client_id}/tags/{tag_id}"),
    ("DELETE", "/api/clients/{client_id}/tags/{tag_id}"),
    ("GET", "/api/clients/{client_id}/pipelines"),
    ("POST", "/api/clients/{client_id}/pipelines"),
    ("GET", "/api/clients/{client_id}/pipelines/{pipeline_id}"),
    ("PATCH", "/api/clients/{client_id}/pipelines/{pipeline_id}"),
    ("DELETE", "/api/clients/{client_id}/pipelines/{pipeline_id}"),
    ("GET", "/api/clients/{client_id}/pipelines/{pipeline_id}/board"),
    ("POST", "/api/clients/{client_id}/pipelines/{pipeline_id}/stages"),
    ("PUT", "/api/clients/{client_id}/pipelines/{pipeline_id}/stages"),
    ("PATCH", "/api/clients/{client_id}/pipelines/{pipeline_id}/stages/{stage_id}"),
    ("DELETE", "/api/clients/{client_id}/pipelines/{pipeline_id}/stages/{stage_id}"),
    ("GET", "/api/clients/{client_id}/deals"),
    ("POST", "/api/clients/{client_id}/deals"),
    ("GET", "/api/clients/{client_id}/deals/{deal_id}"),
    ("PATCH", "/api/clients/{client_id}/deals/{deal_id}"),
    ("DELETE", "/api/clients/{client_id}/deals/{deal_id}"),
    ("GET", "/api/clients/{client_id}/deals/{deal_id}/history"),
    ("GET", "/api/clients/{client_id}/deals/{deal_id}/notes"),
    ("POST", "/api/clients/{client_id}/deals/{deal_id}/notes"),
    ("DELETE", "/api/clients/{client_id}/deals/{deal_id}/notes/{note_id}"),
    ("GET", "/api/clients/{client_id}/services"),
    ("POST", "/api/clients/{client_id}/services"),
    ("GET", "/api/clients/{client_id}/services/{service_id}"),
    ("PATCH", "/api/clients/{client_id}/services/{service_id}"),
    ("DELETE", "/api/clients/{client_id}/services/{service_id}"),
    ("GET", "/api/clients/{client_id}/staff"),
    ("POST", "/api/clients/{client_id}/staff"),
    ("GET", "/api/clients/{client_id}/staff/{staff_id}"),
    ("PATCH", "/api/clients/{client_id}/staff/{staff_id}"),
    ("DELETE", "/api/clients/{client_id}/staff/{staff_id}"),
    ("PUT", "/api/clients/{client_id}/staff/{staff_id}/hours"),
    ("GET", "/api/clients/{client_id}/staff/{staff_id}/time-off"),
    ("POST", "/api/clients/{client_id}/staff/{staff_id}/time-off"),
    ("DELETE", "/api/clients/{client_id}/staff/{staff_id}/time-off/{time_off_id}"),
    ("GET", "/api/clients/{client_id}/appointments"),
    ("POST", "/api/clients/{client_id}/appointments"),
    ("GET", "/api/clients/{client_id}/appointments/{appointment_id}"),
    ("PATCH", "/api/clients/{client_id}/appointments/{appointment_id}"),
    ("GET", "/api/clients/{client_id}/availability"),
    ("GET", "/api/clients/{client_id}/events"),
    ("GET", "/api/clients/{client_id}/webhooks"),
    ("POST", "/api/clients/{client_id}/webhooks"),
    ("GET", "/api/clients/{client_id}/webhooks/{webhook_id}"),
    ("PATCH", "/api/clients/{client_id}/webhooks/{webhook_id}"),
    ("DELETE", "/api/clients/{client_id}/webhooks/{webhook_id}"),
    ("POST", "/api/clients/{client_id}/webhooks/{webhook_id}/rotate-secret"),
    ("POST", "/api/clients/{client_id}/webhooks/{webhook_id}/replay"),
    ("GET", "/api/clients/{client_id}/webhooks/{webhook_id}/deliveries"),
    ("GET", "/api/clients/{client_id}/webhooks/{webhook_id}/deliveries/{delivery_id}"),
    ("POST", "/api/clients/{client_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/replay"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/switch"),
    ("POST", "/api/auth/logout-everywhere"),
    ("POST", "/api/invitations/accept"),
    ("GET", "/api/me"),
    ("GET", "/api/dev/mailbox"),
    ("POST", "/api/auth/login/mfa"),
    ("POST", "/api/signup"),
    ("POST", "/api/signup/verify"),
    ("POST", "/api/auth/password-reset"),
    ("POST", "/api/auth/password-reset/confirm"),
    ("POST", "/api/me/mfa/enrol"),
    ("POST", "/api/me/mfa/confirm"),
    ("DELETE", "/api/me/mfa"),
    ("POST", "/api/me/password"),
    ("GET", "/api/widget/v1/config"),
    ("POST", "/api/widget/v1/leads"),
    ("GET", "/api/widget/v1/services"),
    ("GET", "/api/widget/v1/availability"),
    ("POST", "/api/widget/v1/bookings"),
];

/// One route, split once: its method, template and segments.
struct Split {
    method: &'static str,
    template: &'static str,
    segments: Vec<&'static str>,
}

/// `ROUTES` split and grouped by segment count, built on first use and kept for the isolate, so
/// finding a request's template compares a handful of candidates segment by segment instead of
/// re-splitting every template on every request.
fn by_length() -> &'static [Vec<Split>] {
    static TABLE: std::sync::OnceLock<Vec<Vec<Split>>> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table: Vec<Vec<Split>> = Vec::new();
        for (method, template) in ROUTES {
            let segments: Vec<&'static str> = template.split('/').skip(1).collect();
            if table.len() <= segments.len() {
                table.resize_with(segments.len() + 1, Vec::new);
            }
            table[segments.len()].push(Split { method, template, segments });
        }
        table
    })
}

/// The template of the route `path` matches under `method`, or None. A preflight (`OPTIONS`)
/// matches the route of any method on its path, since it asks about them.
pub fn template(method: &str, path: &str) -> Option<&'static str> {
    let method = if method == "HEAD" { "GET" } else { method };
    let path = path.split('?').next().unwrap_or(path);
    let wanted: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    by_length().get(wanted.len())?.iter().find_map(|r| {
        let method_fits = r.method == method || method == "OPTIONS";
        let fits =
            method_fits && r.segments.iter().zip(&wanted).all(|(s, g)| s == g || (s.starts_with('{') && !g.is_empty()));
        fits.then_some(r.template)
    })
}

#[cfg(test)]
mod tests {
    use super::template;

    #[test]
    fn every_route_is_found_from_a_path_of_its_shape() {
        for (method, t) in super::ROUTES {
            let path: String =
                t.split('/').map(|s| if s.starts_with('{') { "x1" } else { s }).collect::<Vec<_>>().join("/");
            assert_eq!(template(method, &path), Some(*t), "{method} {path}");
            assert_eq!(template(method, &format!("{path}?q=1")), Some(*t), "a query string is not the path");
        }
    }

    #[test]
    fn a_path_finds_its_template_and_only_its_own() {
        let c = "cli_000000000000000000000001";
        assert_eq!(template("GET", &format!("/api/clients/{c}/contacts")), Some("/api/clients/{client_id}/contacts"));
        assert_eq!(template("HEAD", "/healthz"), Some("/healthz"));
        assert_eq!(template("OPTIONS", "/api/widget/v1/leads"), Some("/api/widget/v1/leads"));
        assert_eq!(template("GET", "/api/widget/v1/leads"), None, "leads are POSTed");
        assert_eq!(template("GET", &format!("/api/clients/{c}/contacts/x/y/z")), None);
        assert_eq!(template("GET", "/api/clients//usage"), None, "an empty segment is no id");
        assert_eq!(template("GET", "/nowhere"), None);
    }
}
