//! Encrypted integration settings per client. The provider catalogue is data
//! (`data/providers.json`), so a new provider needs no migration. Secrets are write-only: reads
//! return masked values and metadata; plaintext leaves this module only through `reveal`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::platform::crypto::{self, Secret, SecretContext};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::json_body;
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform, Stmt};
use crate::platform::Ctx;

pub const LIST: &str = "SELECT client_id, provider, field, ciphertext, key_id, updated_by, updated_at \
    FROM client_settings WHERE client_id = ?1 ORDER BY provider, field";
pub const SELECT_ONE: &str = "SELECT client_id, provider, field, ciphertext, key_id, updated_by, updated_at \
    FROM client_settings WHERE client_id = ?1 AND provider = ?2 AND field = ?3";
pub const UPSERT: &str = "INSERT INTO client_settings (client_id, provider, field, ciphertext, key_id, updated_by, \
    updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (client_id, provider, field) DO UPDATE SET \
    ciphertext = ?4, key_id = ?5, updated_by = ?6, updated_at = ?7";
pub const CLEAR: &str = "DELETE FROM client_settings WHERE client_id = ?1 AND provider = ?2 AND field = ?3";
/// Rows under any key but the current one: the rotation job's work list, platform-wide.
pub const UNDER_OLD_KEYS: &str = "SELECT client_id, provider, field, ciphertext, key_id, updated_by, updated_at \
    FROM client_settings WHERE key_id <> ?1 AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants) \
    ORDER BY client_id, provider, field LIMIT ?2";
pub const COUNT_UNDER_OLD_KEYS: &str = "SELECT count(*) AS n FROM client_settings WHERE key_id <> ?1";
/// Re-encrypts one row only if nobody changed it meanwhile.
pub const REWRAP: &str = "UPDATE client_settings SET ciphertext = ?5, key_id = ?6 \
    WHERE client_id = ?1 AND provider = ?2 AND field = ?3 AND ciphertext = ?4";

pub const MAX_VALUE_LEN: usize = 4096;
pub const ROTATION_BATCH: i64 = 100;

crate::platform::body::body! {
    #[derive(Debug, Default)]
    pub struct FieldSpec {
        pub label: String,
        pub secret: bool,
    }
}

crate::platform::body::body! {
    #[derive(Debug, Default)]
    pub struct ProviderSpec {
        pub label: String,
        pub fields: BTreeMap<String, FieldSpec>,
    }
}

/// The catalogue's entry for the widget's own secret: always there, never an integration.
const WIDGET: &str = "widget";

/// Whether a client may use `provider`, given its `integrations` list (`None`: every provider).
pub fn enabled(integrations: Option<&str>, provider: &str) -> bool {
    provider == WIDGET
        || integrations.is_none_or(|list| {
            crate::platform::body::parse::<Vec<String>>(list.as_bytes(), "integrations")
                .is_ok_and(|l| l.iter().any(|p| p == provider))
        })
}

/// A list of provider names, checked against the catalogue, sorted and without repeats.
pub fn integrations_field(names: &[String]) -> ApiResult<Vec<String>> {
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        if n == WIDGET || !providers().contains_key(n) {
            return Err(ApiError::Invalid(
                "unknown_provider",
                format!(
                    "unknown provider `{}`; they are {}",
                    n.chars().take(40).collect::<String>(),
                    providers().keys().map(String::as_str).filter(|p| *p != WIDGET).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        out.push(n.clone());
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The provider catalogue, parsed once per isolate.
pub fn providers() -> &'static BTreeMap<String, ProviderSpec> {
    static CATALOGUE: OnceLock<BTreeMap<String, ProviderSpec>> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        crate::platform::body::parse(include_bytes!("../../data/providers.json"), "providers").unwrap_or_default()
    })
}

crate::platform::rows::row! {
    #[derive(Debug)]
    struct SettingRow {
        client_id: String,
        provider: String,
        field: String,
        ciphertext: String,
        key_id: String,
        updated_by: Option<String>,
        updated_at: i64,
    }
}

impl SettingRow {
    fn ctx(&self) -> SecretContext<'_> {
        SecretContext { client_id: &self.client_id, provider: &self.provider, field: &self.field }
    }
}

pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = access::client(ctx, req, who, client_id, Permission::SettingsRead).await?;
    Ok(Response::json(200, &read_all(ctx, &client, row.integrations.as_deref()).await?))
}

pub async fn put<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
) -> ApiResult<Response> {
    let (client, row) = access::client(ctx, req, who, client_id, Permission::SettingsWrite).await?;
    write(ctx, req, who, &client, row.integrations.as_deref()).await
}

/// Every provider and field, with masked values and who set each and when. Never plaintext of
/// a secret field. A value that fails to decrypt is reported as such, not as an error.
async fn read_all<P: Platform>(ctx: &Ctx<'_, P>, client: &ClientScope, integrations: Option<&str>) -> ApiResult<Value> {
    let client_id = client.id();
    let rows: Vec<SettingRow> = ctx.p.query_as(LIST, &[client_id.into()]).await?;
    let mut out = Vec::new();
    for (name, spec) in providers() {
        let mut fields = Vec::new();
        for (field, fs) in &spec.fields {
            let row = rows.iter().find(|r| &r.provider == name && &r.field == field);
            let mut v = json!({"field": field, "label": fs.label, "secret": fs.secret, "set": row.is_some()});
            if let Some(r) = row {
                match crypto::open(ctx.cfg, &r.ctx(), &r.ciphertext) {
                    Ok(secret) => {
                        v["value"] =
                            if fs.secret { json!(crypto::mask(secret.expose())) } else { json!(secret.expose()) };
                    }
                    Err(e) => {
                        ctx.p.log("warn", &format!("setting {client_id}/{name}/{field} unreadable: {e}"));
                        v["error"] = json!("undecryptable");
                    }
                }
                v["key_id"] = json!(r.key_id);
                v["updated_by"] = json!(r.updated_by);
                v["updated_at"] = json!(r.updated_at);
            }
            fields.push(v);
        }
        out.push(
            json!({"provider": name, "label": spec.label, "enabled": enabled(integrations, name), "fields": fields}),
        );
    }
    Ok(json!({"client_id": client_id, "providers": out}))
}

/// Sets (string) or clears (null) fields; partial updates leave other fields alone.
async fn write<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client: &ClientScope,
    integrations: Option<&str>,
) -> ApiResult<Response> {
    let client_id = client.id();
    let body: Map<String, Value> = json_body(req, &["client_id"])?;
    if body.is_empty() {
        return Err(ApiError::invalid("invalid_field", "name at least one provider"));
    }
    let now = ctx.p.now_ms();
    let mut stmts = Vec::new();
    let mut changed: Vec<Value> = Vec::new();
    for (provider, fields) in &body {
        let spec = providers()
            .get(provider)
            .ok_or_else(|| ApiError::Invalid("unknown_provider", format!("unknown provider `{provider}`")))?;
        let fields = fields.as_object().ok_or_else(|| {
            ApiError::Invalid("invalid_field", format!("`{provider}` must map field names to values"))
        })?;
        for (field, value) in fields {
            if !spec.fields.contains_key(field) {
                return Err(ApiError::Invalid("unknown_field", format!("`{provider}` has no field `{field}`")));
            }
            let aad = SecretContext { client_id, provider, field };
            if !value.is_null() && !enabled(integrations, provider) {
                return Err(ApiError::Forbidden(
                    "integration_disabled",
                    format!("`{provider}` is not enabled for this client; its agency enables integrations"),
                ));
            }
            match value {
                Value::Null => {
                    stmts.push(Stmt::new(
                        CLEAR,
                        vec![client_id.into(), provider.as_str().into(), field.as_str().into()],
                    ));
                    changed.push(json!({"provider": provider, "field": field, "change": "cleared"}));
                }
                Value::String(s) => {
                    if s.is_empty() || s.len() > MAX_VALUE_LEN || s.chars().any(|c| c.is_control()) {
                        return Err(ApiError::Invalid(
                            "invalid_value",
                            format!("`{provider}.{field}` must be 1-{MAX_VALUE_LEN} bytes without control characters"),
                        ));
                    }
                    let sealed = crypto::seal(ctx.cfg, &aad, s).map_err(|e| ApiError::Internal(e.to_string()))?;
                    stmts.push(Stmt::new(
                        UPSERT,
                        vec![
                            client_id.into(),
                            provider.as_str().into(),
                            field.as_str().into(),
                            sealed.into(),
                            ctx.cfg.current_key.id.as_str().into(),
                            who.user_id.as_str().into(),
                            Param::Int(now),
                        ],
                    ));
                    changed.push(json!({"provider": provider, "field": field, "change": "set"}));
                }
                _ => {
                    return Err(ApiError::Invalid(
                        "invalid_value",
                        format!("`{provider}.{field}` must be a string or null"),
                    ))
                }
            }
        }
    }
    // The audit row names what changed, never a value.
    stmts.push(audit::entry(
        ctx,
        req,
        Some(who),
        Event {
            tenant_id: client_id,
            action: "settings.updated",
            target_type: "settings",
            target_id: Some(client_id),
            metadata: json!({"changes": changed}),
        },
    )?);
    ctx.p.batch(&stmts).await?;
    Ok(Response::json(200, &read_all(ctx, client, integrations).await?))
}

/// The one way to get a credential's plaintext, for internal callers (the CRM or the widget
/// calling out). The tenant is a scope `access` made, never an id from input.
pub async fn reveal<P: Platform>(
    ctx: &Ctx<'_, P>,
    client: &ClientScope,
    provider: &str,
    field: &str,
) -> ApiResult<Option<Secret>> {
    let client_id = client.id();
    let rows: Vec<SettingRow> = ctx.p.query_as(SELECT_ONE, &[client_id.into(), provider.into(), field.into()]).await?;
    let Some(row) = rows.into_iter().next() else { return Ok(None) };
    crypto::open(ctx.cfg, &row.ctx(), &row.ciphertext)
        .map(Some)
        .map_err(|e| ApiError::Internal(format!("setting unreadable: {e}")))
}

/// Re-encrypts up to `ROTATION_BATCH` rows still under a retired key with the current key.
/// Rows that cannot be opened are left alone and reported: they need an operator, not a retry.
pub async fn rotate_batch<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let current = ctx.cfg.current_key.id.as_str();
    let rows: Vec<SettingRow> = ctx.p.query_as(UNDER_OLD_KEYS, &[current.into(), Param::Int(ROTATION_BATCH)]).await?;
    let mut stmts = Vec::new();
    let mut unreadable = Vec::new();
    for r in &rows {
        match crypto::open(ctx.cfg, &r.ctx(), &r.ciphertext) {
            Ok(secret) => {
                let sealed = crypto::seal(ctx.cfg, &r.ctx(), secret.expose()).map_err(|e| ApiError::Internal(e.to_string()))?;
                stmts.push(Stmt::new(
                    REWRAP,
                    vec![
                        r.client_id.as_str().into(),
                        r.provider.as_str().into(),
                        r.field.as_str().into(),
                        r.ciphertext.as_str().into(),
                        sealed.into(),
                        current.into(),
                    ],
                ));
            }
            Err(e) => unreadable.push(json!({"client_id": r.client_id, "provider": r.provider, "field": r.field, "key_id": r.key_id, "error": e.to_string()})),
        }
    }
    let rotated: u64 = if stmts.is_empty() { 0 } else { ctx.p.batch(&stmts).await?.iter().sum() };
    let remaining = ctx.p.query(COUNT_UNDER_OLD_KEYS, &[current.into()]).await?;
    let remaining = remaining.first().and_then(|r| crate::platform::ports::col_i64(r, "n")).unwrap_or(0);
    Ok(json!({"current_key": current, "rotated": rotated, "unreadable": unreadable, "remaining": remaining}))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The catalogue reads whole: a member its structs do not name fails here, not as an empty
    /// catalogue that refuses every provider at run time.
    #[test]
    fn the_provider_catalogue_reads_whole() {
        let read = crate::platform::body::parse::<BTreeMap<String, ProviderSpec>>(
            include_bytes!("../../data/providers.json"),
            "providers",
        );
        let catalogue = read.unwrap_or_else(|e| panic!("data/providers.json: {e}"));
        assert!(catalogue.contains_key(WIDGET), "the widget's own secret is in the catalogue");
        assert!(catalogue.len() > 2, "{} providers", catalogue.len());
        assert!(catalogue.values().all(|p| !p.label.is_empty() && !p.fields.is_empty()));
        assert_eq!(providers().len(), catalogue.len());
    }
}
