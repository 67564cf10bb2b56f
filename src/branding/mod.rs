//! Branding for clients and agencies. An agency's branding is the default its clients
//! inherit; the effective branding says, field by field, which level each value came from.

pub mod console;
pub mod css;
pub mod portal;

use serde_json::{json, Map, Value};

use crate::access::audit::{self, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, AgencyScope, ClientScope};
use crate::files::{self, Area, Upload};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{email_field, json_body, text_field};
use crate::platform::http::{Request, Response};
use crate::platform::ports::{Param, Platform, Row, Stmt};
use crate::platform::Ctx;

pub const SELECT_FOR: &str = "SELECT owner_id, owner_kind, primary_color, secondary_color, tagline, support_email, \
    support_phone, logo_file_id, favicon_file_id, custom_css, updated_by, updated_at FROM branding \
    WHERE owner_id IN (?1, ?2)";
pub const UPSERT: &str = "INSERT INTO branding (owner_id, owner_kind, primary_color, secondary_color, tagline, \
    support_email, support_phone, logo_file_id, favicon_file_id, custom_css, updated_by, updated_at) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (owner_id) DO UPDATE SET \
    primary_color = ?3, secondary_color = ?4, tagline = ?5, support_email = ?6, support_phone = ?7, \
    logo_file_id = ?8, favicon_file_id = ?9, custom_css = ?10, updated_by = ?11, updated_at = ?12";

pub const FIELDS: [&str; 8] = [
    "primary_color",
    "secondary_color",
    "tagline",
    "support_email",
    "support_phone",
    "logo_file_id",
    "favicon_file_id",
    "custom_css",
];
pub const DEFAULT_PRIMARY: &str = "#2563eb";
pub const DEFAULT_SECONDARY: &str = "#0f172a";
/// The element every portal page wraps its content in; custom CSS is scoped under it.
pub const PORTAL_ROOT: &str = ".gh-portal";

crate::platform::body::body! {
    #[derive(Default)]
    struct Patch {
        primary_color: Option<Option<String>>,
        secondary_color: Option<Option<String>>,
        tagline: Option<Option<String>>,
        support_email: Option<Option<String>>,
        support_phone: Option<Option<String>>,
        custom_css: Option<Option<String>>,
    }
}

/// `#rgb` or `#rrggbb`, lowercased.
pub fn parse_color(v: &str) -> ApiResult<String> {
    let ok = v.starts_with('#') && matches!(v.len(), 4 | 7) && v[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(ApiError::invalid(
            "invalid_color",
            format!("`{}` is not a hex color like #1a2b3c", v.chars().take(20).collect::<String>()),
        ));
    }
    Ok(v.to_ascii_lowercase())
}

/// One owner's stored branding, as a map of field → value (absent fields are null).
async fn load<P: Platform>(ctx: &Ctx<'_, P>, owner: &str, parent: &str) -> ApiResult<(Row, Row)> {
    let rows = ctx.p.query(SELECT_FOR, &[owner.into(), parent.into()]).await?;
    let pick = |id: &str| {
        rows.iter().find(|r| r.get("owner_id").and_then(Value::as_str) == Some(id)).cloned().unwrap_or_default()
    };
    Ok((pick(owner), pick(parent)))
}

/// The effective branding of a client: client value, else agency value, else the default.
pub async fn effective<P: Platform>(
    ctx: &Ctx<'_, P>,
    client_id: &str,
    agency_id: &str,
) -> ApiResult<Map<String, Value>> {
    let (own, agency) = load(ctx, client_id, agency_id).await?;
    Ok(resolve(&own, &agency))
}

/// The effective branding of an agency's own portal: its value, else the default.
pub async fn of_agency<P: Platform>(ctx: &Ctx<'_, P>, agency_id: &str) -> ApiResult<Map<String, Value>> {
    let (_, agency) = load(ctx, agency_id, agency_id).await?;
    Ok(resolve(&Row::default(), &agency))
}

/// Field by field: the client's value, else the agency's, else the default, with its source.
pub fn resolve(own: &Row, agency: &Row) -> Map<String, Value> {
    let mut out = Map::new();
    for f in FIELDS {
        let (value, source) = match (own.get(f).filter(|v| !v.is_null()), agency.get(f).filter(|v| !v.is_null())) {
            (Some(v), _) => (v.clone(), "client"),
            (None, Some(v)) => (v.clone(), "agency"),
            (None, None) => match f {
                "primary_color" => (json!(DEFAULT_PRIMARY), "default"),
                "secondary_color" => (json!(DEFAULT_SECONDARY), "default"),
                _ => (Value::Null, "default"),
            },
        };
        out.insert(f.to_string(), json!({"value": value, "source": source}));
    }
    out
}

/// Just the values, for the widget and the portal page.
pub fn values(effective: &Map<String, Value>) -> Map<String, Value> {
    effective.iter().map(|(k, v)| (k.clone(), v["value"].clone())).collect()
}

fn asset_url(file_id: &Value) -> Value {
    file_id.as_str().map(|id| json!(format!("/assets/{id}"))).unwrap_or(Value::Null)
}

/// The branding the widget shows (colors, tagline, logo), from the client's and agency's rows.
pub fn for_widget(own: &Row, agency: &Row) -> Value {
    let v = values(&resolve(own, agency));
    json!({
        "primary_color": v["primary_color"], "secondary_color": v["secondary_color"], "tagline": v["tagline"],
        "logo_url": asset_url(&v["logo_file_id"]),
    })
}

enum Owner<'a> {
    Client(&'a ClientScope),
    Agency(&'a AgencyScope),
}

impl Owner<'_> {
    fn id(&self) -> &str {
        match self {
            Owner::Client(c) => c.id(),
            Owner::Agency(a) => a.id(),
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Owner::Client(_) => "client",
            Owner::Agency(_) => "agency",
        }
    }
    fn parent(&self) -> &str {
        match self {
            Owner::Client(c) => c.agency_id(),
            Owner::Agency(a) => a.id(),
        }
    }
}

async fn response<P: Platform>(ctx: &Ctx<'_, P>, owner: &Owner<'_>) -> ApiResult<Value> {
    let (own, _) = load(ctx, owner.id(), owner.parent()).await?;
    let mut body = json!({"owner_id": owner.id(), "owner_kind": owner.kind(), "own": own});
    if let Owner::Client(c) = owner {
        body["effective"] = Value::Object(effective(ctx, c.id(), c.agency_id()).await?);
    }
    Ok(body)
}

/// The client's branding, for a caller holding `perm` on it.
async fn client_owner<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    perm: Permission,
) -> ApiResult<ClientScope> {
    Ok(access::client(ctx, req, who, client_id, perm).await?.0)
}

/// The agency's branding: the defaults every client of the agency inherits.
async fn agency_owner<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    agency_id: &str,
    perm: Permission,
) -> ApiResult<AgencyScope> {
    Ok(access::agency(ctx, req, who, agency_id, perm).await?.0)
}

/// `GET /api/clients/{id}/branding`: its own values and the effective ones.
pub async fn get_client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    let c = client_owner(ctx, req, who, id, Permission::BrandingRead).await?;
    Ok(Response::json(200, &response(ctx, &Owner::Client(&c)).await?))
}

/// `PUT /api/clients/{id}/branding`.
pub async fn put_client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    let c = client_owner(ctx, req, who, id, Permission::BrandingWrite).await?;
    update(ctx, req, who, &Owner::Client(&c)).await?;
    Ok(Response::json(200, &response(ctx, &Owner::Client(&c)).await?))
}

/// `POST /api/clients/{id}/branding/{logo|favicon}`: the body is the image.
pub async fn upload_client<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
    which: &str,
) -> ApiResult<Response> {
    let c = client_owner(ctx, req, who, id, Permission::BrandingWrite).await?;
    upload_asset(ctx, req, who, &Owner::Client(&c), which).await?;
    Ok(Response::json(200, &response(ctx, &Owner::Client(&c)).await?))
}

/// `GET /api/agencies/{id}/branding`.
pub async fn get_agency<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    let a = agency_owner(ctx, req, who, id, Permission::AgenciesRead).await?;
    Ok(Response::json(200, &response(ctx, &Owner::Agency(&a)).await?))
}

/// `PUT /api/agencies/{id}/branding`.
pub async fn put_agency<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
) -> ApiResult<Response> {
    let a = agency_owner(ctx, req, who, id, Permission::AgenciesWrite).await?;
    update(ctx, req, who, &Owner::Agency(&a)).await?;
    Ok(Response::json(200, &response(ctx, &Owner::Agency(&a)).await?))
}

/// `POST /api/agencies/{id}/branding/{logo|favicon}`.
pub async fn upload_agency<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    id: &str,
    which: &str,
) -> ApiResult<Response> {
    let a = agency_owner(ctx, req, who, id, Permission::AgenciesWrite).await?;
    upload_asset(ctx, req, who, &Owner::Agency(&a), which).await?;
    Ok(Response::json(200, &response(ctx, &Owner::Agency(&a)).await?))
}

/// The branding fields a person sets as text (the logo and favicon are uploaded instead).
pub const TEXT_FIELDS: [&str; 6] =
    ["primary_color", "secondary_color", "tagline", "support_email", "support_phone", "custom_css"];

/// Validates one text field of `TEXT_FIELDS`, normalised; custom CSS may reference only `assets`.
pub fn check_field(field: &str, v: &str, assets: &[String]) -> ApiResult<String> {
    match field {
        "primary_color" | "secondary_color" => parse_color(v),
        "tagline" => text_field("tagline", v, 160),
        "support_email" => email_field(v),
        "support_phone" => text_field("support_phone", v, 40),
        "custom_css" => crate::branding::css::sanitize(v, PORTAL_ROOT, &|u| assets.iter().any(|a| a == u))
            .map_err(|e| ApiError::Invalid("invalid_css", e.to_string())),
        _ => Err(ApiError::invalid(
            "invalid_field",
            format!(
                "`{}` is not a branding field; they are {}",
                field.chars().take(40).collect::<String>(),
                TEXT_FIELDS.join(", ")
            ),
        )),
    }
}

/// The upsert of an owner's whole branding row.
pub fn upsert(owner_id: &str, owner_kind: &str, row: &Row, by: &str, now: i64) -> Stmt {
    let text = |f: &str| -> Param { row.get(f).and_then(Value::as_str).map(String::from).into() };
    let mut params = vec![owner_id.into(), owner_kind.into()];
    params.extend(FIELDS.iter().map(|f| text(f)));
    params.push(by.into());
    params.push(Param::Int(now));
    Stmt::new(UPSERT, params)
}

async fn update<P: Platform>(ctx: &Ctx<'_, P>, req: &Request, who: &Principal, owner: &Owner<'_>) -> ApiResult<()> {
    let patch: Patch =
        json_body(req, &["owner_id", "owner_kind", "logo_file_id", "favicon_file_id", "client_id", "agency_id"])?;
    let (mut row, _) = load(ctx, owner.id(), owner.parent()).await?;
    let own_assets = tenant_assets(&row);
    let mut changed = Vec::new();
    let fields = [
        ("primary_color", patch.primary_color),
        ("secondary_color", patch.secondary_color),
        ("tagline", patch.tagline),
        ("support_email", patch.support_email),
        ("support_phone", patch.support_phone),
        ("custom_css", patch.custom_css),
    ];
    for (field, value) in fields {
        if let Some(v) = value {
            let v = v.map(|s| check_field(field, &s, &own_assets)).transpose()?;
            row.insert(field.into(), v.map(Value::String).unwrap_or(Value::Null));
            changed.push(field);
        }
    }
    save(ctx, req, who, owner, &row, json!({"fields": changed})).await
}

/// Writes an owner's branding row and its audit entry in one batch.
async fn save<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    owner: &Owner<'_>,
    row: &Row,
    metadata: Value,
) -> ApiResult<()> {
    let audit = audit::entry(
        ctx,
        req,
        Some(who),
        Event {
            tenant_id: owner.id(),
            action: "branding.updated",
            target_type: "branding",
            target_id: Some(owner.id()),
            metadata,
        },
    )?;
    ctx.p.batch(&[upsert(owner.id(), owner.kind(), row, &who.user_id, ctx.p.now_ms()), audit]).await?;
    // The widget config carries branding; a client's or its agency's change must reach it.
    ctx.tenant_changed(owner.id());
    Ok(())
}

/// The asset URLs this owner's CSS may reference: its own logo and favicon.
fn tenant_assets(row: &Row) -> Vec<String> {
    ["logo_file_id", "favicon_file_id"]
        .iter()
        .filter_map(|f| row.get(*f).and_then(Value::as_str))
        .map(|id| format!("/assets/{id}"))
        .collect()
}

const IMAGE_TYPES: [&str; 5] = ["image/png", "image/jpeg", "image/gif", "image/webp", "image/x-icon"];

async fn upload_asset<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    owner: &Owner<'_>,
    which: &str,
) -> ApiResult<()> {
    let declared = req.header("content-type").unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if !IMAGE_TYPES.contains(&declared.as_str()) {
        return Err(ApiError::UnsupportedMediaType("logos and favicons are PNG, JPEG, GIF, WebP or ICO images".into()));
    }
    let up = Upload {
        tenant_id: owner.id(),
        area: Area::Branding,
        name: which,
        content_type: &declared,
        bytes: req.body.clone(),
    };
    let file = files::store(ctx, req, who, up).await?;
    let (mut row, _) = load(ctx, owner.id(), owner.parent()).await?;
    let field = if which == "logo" { "logo_file_id" } else { "favicon_file_id" };
    let previous = row.get(field).and_then(Value::as_str).map(String::from);
    row.insert(field.into(), json!(file.id));
    save(ctx, req, who, owner, &row, json!({"fields": [field], "file_id": file.id})).await?;
    // The replaced asset is no longer referenced; remove it (object and row together).
    if let Some(old) = previous {
        let removed = async { files::remove(ctx, req, who, &files::ready_file(ctx, owner.id(), &old).await?).await };
        if let Err(e) = removed.await {
            ctx.p.log("warn", &format!("could not remove replaced branding asset {old}: {e}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_are_hex_only() {
        assert_eq!(parse_color("#1A2b3C").unwrap(), "#1a2b3c");
        assert_eq!(parse_color("#abc").unwrap(), "#abc");
        for bad in ["red", "#12345", "#ggg", "1a2b3c", "#1a2b3c;}", "rgb(0,0,0)", "#1a2b3c00"] {
            assert!(parse_color(bad).is_err(), "{bad}");
        }
    }
}
