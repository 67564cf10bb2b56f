//! Files, branding and the portal through the real router, with R2 and D1 doubles that can be
//! told to fail.

use crate::common::*;
use gatehouse::platform::http::{Method, Request, Response};
use gatehouse::seed::{ACME, AGENCY, GLOBEX};
use serde_json::{json, Value};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

fn get(t: &TestApp, token: Option<&str>, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut r = Request::new(Method::Get, path).with_header("host", API);
    if let Some(tok) = token {
        r = r.with_header("authorization", &format!("Bearer {tok}"));
    }
    for (k, v) in headers {
        r = r.with_header(k, v);
    }
    t.call(r)
}

fn rows_and_objects(t: &TestApp) -> (usize, usize) {
    (t.p.sql("SELECT id FROM files").len(), t.p.blobs.borrow().len())
}

#[test]
fn a_file_round_trips_with_metadata_etag_and_ranges() {
    let t = TestApp::new();
    let tok = t.login("user@acme.test");
    let body: Vec<u8> = (0..5000u32).map(|i| b"abcdefghij"[i as usize % 10]).collect();
    let r = upload(&t, &tok, ACME, "notes.txt", "text/plain", &body);
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let f = json_of(&r);
    assert_eq!(f["size"], 5000);
    assert_eq!(f["name"], "notes.txt");
    assert_eq!(f["sha256"].as_str().unwrap().len(), 64);
    let id = f["id"].as_str().unwrap();
    let key = t.p.sql("SELECT object_key FROM files")[0]["object_key"].as_str().unwrap().to_string();
    assert_eq!(key, format!("tenants/{ACME}/uploads/{id}"));
    let d = get(&t, Some(&tok), &format!("/api/clients/{ACME}/files/{id}"), &[]);
    assert_eq!(d.status, 200);
    assert_eq!(d.body, body);
    assert_eq!(d.header("content-type"), Some("text/plain"));
    assert_eq!(d.header("content-length"), Some("5000"));
    let etag = d.header("etag").unwrap().to_string();
    let part = get(&t, Some(&tok), &format!("/api/clients/{ACME}/files/{id}"), &[("range", "bytes=10-19")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &body[10..20]);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/5000"));
    let bad = get(&t, Some(&tok), &format!("/api/clients/{ACME}/files/{id}"), &[("range", "bytes=9000-")]);
    assert_eq!(bad.status, 416);
    assert_eq!(
        get(&t, Some(&tok), &format!("/api/clients/{ACME}/files/{id}"), &[("if-none-match", &etag)]).status,
        304
    );
    let list = json_of(&get(&t, Some(&tok), &format!("/api/clients/{ACME}/files?limit=1"), &[]));
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["next_cursor"], id);
}

#[test]
fn hostile_filenames_never_reach_a_key_or_another_tenant() {
    let t = TestApp::new();
    let tok = t.login("user@acme.test");
    let names = [
        "../../globex/secret.txt",
        "..%2f..%2fglobex",
        "%2e%2e/%2e%2e/x",
        "..\\..\\windows\\x",
        "a\0b.txt",
        &"n".repeat(5000),
        "résumé 📄.txt",
        "tenants/cli_000000000000000000000002/uploads/x",
        "/etc/passwd",
        "",
    ];
    for name in names {
        let r = upload(&t, &tok, ACME, name, "text/plain", b"hello");
        assert_eq!(r.status, 201, "{name:?}: {}", body_str(&r));
        let stored = json_of(&r)["name"].as_str().unwrap().to_string();
        assert!(!stored.contains('/') && !stored.contains('\\') && !stored.contains('\0'), "{stored:?}");
        assert!(stored.chars().count() <= 255);
    }
    for row in t.p.sql("SELECT object_key, id FROM files") {
        let key = row["object_key"].as_str().unwrap();
        assert_eq!(key, format!("tenants/{ACME}/uploads/{}", row["id"].as_str().unwrap()));
    }
    assert!(t.p.blobs.borrow().keys().all(|k| k.starts_with(&format!("tenants/{ACME}/uploads/"))));
}

#[test]
fn another_client_cannot_list_read_sign_or_delete_files() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    let globex = t.login("admin@globex.test");
    let id = json_of(&upload(&t, &acme, ACME, "a.txt", "text/plain", b"acme only"))["id"].as_str().unwrap().to_string();
    for (m, path) in [
        (Method::Get, format!("/api/clients/{ACME}/files")),
        (Method::Get, format!("/api/clients/{ACME}/files/{id}")),
        (Method::Post, format!("/api/clients/{ACME}/files/{id}/sign")),
        (Method::Delete, format!("/api/clients/{ACME}/files/{id}")),
        // Through globex's own path with acme's file id: still not found.
        (Method::Get, format!("/api/clients/{GLOBEX}/files/{id}")),
        (Method::Post, format!("/api/clients/{GLOBEX}/files/{id}/sign")),
        (Method::Delete, format!("/api/clients/{GLOBEX}/files/{id}")),
    ] {
        let r = t.req(m, &path, Some(&globex), None);
        assert_eq!(r.status, 404, "{m:?} {path}: {}", body_str(&r));
    }
    assert_eq!(rows_and_objects(&t), (1, 1));
}

#[test]
fn signed_urls_work_without_a_token_and_refuse_tampering_and_expiry() {
    let t = TestApp::new();
    let tok = t.login("user@acme.test");
    let id =
        json_of(&upload(&t, &tok, ACME, "a.txt", "text/plain", b"signed body"))["id"].as_str().unwrap().to_string();
    let s = t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/files/{id}/sign"),
        Some(&tok),
        Some(json!({"expires_in": 60})),
    );
    assert_eq!(s.status, 200, "{}", body_str(&s));
    let url = json_of(&s)["url"].as_str().unwrap().to_string();
    let ok = get(&t, None, &url, &[]);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, b"signed body");
    let tampered = [
        url.replace(&format!("t={ACME}"), &format!("t={GLOBEX}")),
        url.replacen("&e=", "&e=9", 1),
        format!("{}A", url),
        url.replace(&id, "fil_000000000000000000000000"),
    ];
    for u in &tampered {
        let r = get(&t, None, u, &[]);
        assert_eq!(r.status, 403, "{u}: {}", body_str(&r));
    }
    t.p.now_ms.set(t.p.now_ms.get() + 61_000);
    assert_eq!(get(&t, None, &url, &[]).status, 403, "expired");
}

#[test]
fn limits_and_sniffing_refuse_uploads_and_store_nothing() {
    let t = TestApp::with_config(test_config(&[("MAX_UPLOAD_BYTES", "1000")]));
    t.p.exec(&format!("UPDATE clients SET limits = '{{\"storage_bytes\":1500}}' WHERE id = '{ACME}'"));
    let tok = t.login("user@acme.test");
    assert_eq!(upload(&t, &tok, ACME, "big.txt", "text/plain", &[b'a'; 1001]).status, 413);
    assert_eq!(
        upload(&t, &tok, ACME, "evil.png", "image/png", b"MZ\x90\0\x03\0\0\0\x04\0").status,
        415,
        "an .exe sent as image/png"
    );
    assert_eq!(upload(&t, &tok, ACME, "page.html", "text/html", b"<script>alert(1)</script>").status, 415);
    assert_eq!(upload(&t, &tok, ACME, "x.bin", "application/octet-stream", b"\x7fELF").status, 415);
    assert_eq!(upload(&t, &tok, ACME, "empty.txt", "text/plain", b"").status, 422);
    assert_eq!(rows_and_objects(&t), (0, 0));
    assert_eq!(upload(&t, &tok, ACME, "one.txt", "text/plain", &[b'a'; 900]).status, 201);
    let over = upload(&t, &tok, ACME, "two.txt", "text/plain", &[b'a'; 900]);
    assert_eq!(over.status, 429, "quota");
    assert_eq!(error_code(&over), "quota_exceeded");
    assert_eq!(json_of(&over)["error"]["metric"], "storage_bytes");
    assert_eq!(upload(&t, &tok, ACME, "logo.png", "image/png", PNG).status, 201);
    assert_eq!(rows_and_objects(&t), (2, 2));
}

#[test]
fn a_failed_r2_put_or_d1_write_leaves_neither_object_nor_row() {
    let t = TestApp::new();
    let tok = t.login("user@acme.test");
    t.p.fail_blob_put.set(true);
    let r = upload(&t, &tok, ACME, "a.txt", "text/plain", b"hello");
    assert_eq!(r.status, 500);
    assert_eq!(error_code(&r), "internal_error");
    assert_eq!(rows_and_objects(&t), (0, 0), "R2 put failed");
    t.p.fail_blob_put.set(false);
    *t.p.fail_sql_containing.borrow_mut() = Some("SET status = 'ready'".into());
    let r = upload(&t, &tok, ACME, "a.txt", "text/plain", b"hello");
    assert_eq!(r.status, 500);
    assert_eq!(rows_and_objects(&t), (0, 0), "D1 write after R2 put failed");
    *t.p.fail_sql_containing.borrow_mut() = Some("INSERT INTO files".into());
    assert_eq!(upload(&t, &tok, ACME, "a.txt", "text/plain", b"hello").status, 500);
    assert_eq!(rows_and_objects(&t), (0, 0), "D1 insert failed");
    *t.p.fail_sql_containing.borrow_mut() = None;
}

#[test]
fn deletes_remove_object_and_row_together_even_when_a_step_fails() {
    let t = TestApp::new();
    let tok = t.login("user@acme.test");
    let id = json_of(&upload(&t, &tok, ACME, "a.txt", "text/plain", b"bye"))["id"].as_str().unwrap().to_string();
    t.p.fail_blob_delete.set(true);
    let r = t.req(Method::Delete, &format!("/api/clients/{ACME}/files/{id}"), Some(&tok), None);
    assert_eq!(r.status, 500);
    assert_eq!(rows_and_objects(&t), (1, 1), "R2 refused: both remain");
    assert_eq!(
        get(&t, Some(&tok), &format!("/api/clients/{ACME}/files/{id}"), &[]).status,
        200,
        "and it is still served"
    );
    t.p.fail_blob_delete.set(false);
    *t.p.fail_sql_containing.borrow_mut() = Some("DELETE FROM files".into());
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}/files/{id}"), Some(&tok), None).status, 500);
    assert_eq!(rows_and_objects(&t), (1, 0), "object gone, row left `deleting` and invisible");
    assert_eq!(get(&t, Some(&tok), &format!("/api/clients/{ACME}/files/{id}"), &[]).status, 404);
    *t.p.fail_sql_containing.borrow_mut() = None;
    // The scheduled reconciler finishes the job.
    t.p.now_ms.set(t.p.now_ms.get() + 16 * 60 * 1000);
    let app = gatehouse::App::new(&t.p, &t.cfg, &t.state);
    let report = pollster::block_on(app.scheduled("*/15 * * * *")).unwrap();
    assert_eq!(report["files"]["cleaned"], 1);
    assert_eq!(rows_and_objects(&t), (0, 0));
    let tok = t.login("user@acme.test"); // the clock moved past the first token's expiry
    let id = json_of(&upload(&t, &tok, ACME, "b.txt", "text/plain", b"ok"))["id"].as_str().unwrap().to_string();
    assert_eq!(t.req(Method::Delete, &format!("/api/clients/{ACME}/files/{id}"), Some(&tok), None).status, 204);
    assert_eq!(rows_and_objects(&t), (0, 0));
}

#[test]
fn branding_inherits_from_the_agency_field_by_field() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let acme = t.login("admin@acme.test");
    let r = t.req(
        Method::Put,
        &format!("/api/agencies/{AGENCY}/branding"),
        Some(&agency),
        Some(
            json!({"primary_color": "#AA0000", "tagline": "Northwind clients", "support_email": "help@northwind.test"}),
        ),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{ACME}/branding"),
        Some(&acme),
        Some(json!({"primary_color": "#00aa00"})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let e = &json_of(&r)["effective"];
    assert_eq!(e["primary_color"], json!({"value": "#00aa00", "source": "client"}));
    assert_eq!(e["tagline"], json!({"value": "Northwind clients", "source": "agency"}));
    assert_eq!(e["secondary_color"]["source"], "default");
    // Clearing a field falls back to the agency again.
    let r =
        t.req(Method::Put, &format!("/api/clients/{ACME}/branding"), Some(&acme), Some(json!({"primary_color": null})));
    assert_eq!(json_of(&r)["effective"]["primary_color"], json!({"value": "#aa0000", "source": "agency"}));
    for (body, code) in [
        (json!({"primary_color": "red"}), "invalid_color"),
        (json!({"primary_color": "#fff;}</style>"}), "invalid_color"),
        (json!({"custom_css": "@import url(https://evil.test/x.css);"}), "invalid_css"),
        (json!({"custom_css": "a { background: url(https://evil.test/p.gif) }"}), "invalid_css"),
        (json!({"custom_css": "</style><script>alert(1)</script>"}), "invalid_css"),
        (json!({"logo_file_id": "fil_000000000000000000000001"}), "forbidden_field"),
    ] {
        let r = t.req(Method::Put, &format!("/api/clients/{ACME}/branding"), Some(&acme), Some(body.clone()));
        assert_eq!(r.status, 422, "{body}");
        assert_eq!(error_code(&r), code, "{body}");
    }
    let viewer = t.login("viewer@acme.test");
    assert_eq!(
        t.req(Method::Put, &format!("/api/clients/{ACME}/branding"), Some(&viewer), Some(json!({"tagline": "x"})))
            .status,
        403
    );
    assert_eq!(
        t.req(Method::Put, &format!("/api/agencies/{AGENCY}/branding"), Some(&acme), Some(json!({"tagline": "x"})))
            .status,
        404
    );
}

#[test]
fn a_logo_upload_is_a_branding_file_served_publicly_and_css_may_use_it() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    let r = t.call(
        Request::new(Method::Post, &format!("/api/clients/{ACME}/branding/logo"))
            .with_header("host", API)
            .with_header("authorization", &format!("Bearer {acme}"))
            .with_header("content-type", "image/png")
            .with_body(PNG.to_vec()),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let logo = json_of(&r)["own"]["logo_file_id"].as_str().unwrap().to_string();
    assert!(t.p.blobs.borrow().contains_key(&format!("tenants/{ACME}/branding/{logo}")));
    let asset = get(&t, None, &format!("/assets/{logo}"), &[]);
    assert_eq!(asset.status, 200);
    assert_eq!(asset.header("content-type"), Some("image/png"));
    let css = format!("body {{ background: url(/assets/{logo}) }} .card {{ color: #123 }}");
    let r = t.req(Method::Put, &format!("/api/clients/{ACME}/branding"), Some(&acme), Some(json!({"custom_css": css})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let stored = json_of(&r)["own"]["custom_css"].as_str().unwrap().to_string();
    assert!(stored.contains(".gh-portal .card"), "{stored}");
    // Uploads-area files are never public assets.
    let up =
        json_of(&upload(&t, &acme, ACME, "private.txt", "text/plain", b"private"))["id"].as_str().unwrap().to_string();
    assert_eq!(get(&t, None, &format!("/assets/{up}"), &[]).status, 404);
}

fn portal(t: &TestApp, host: &str, path: &str) -> Response {
    t.call(Request::new(Method::Get, path).with_header("host", host))
}

#[test]
fn each_portal_wears_its_own_branding_and_unknown_hosts_get_a_plain_404() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    t.req(
        Method::Put,
        &format!("/api/clients/{ACME}/branding"),
        Some(&acme),
        Some(json!({"primary_color": "#ff6600", "tagline": "Pipes <fixed>"})),
    );
    let a = portal(&t, "acme.portal.test", "/");
    assert_eq!(a.status, 200);
    let html = body_str(&a);
    assert!(
        html.contains("Acme Plumbing")
            && html.contains("--gh-primary: #ff6600")
            && html.contains("Pipes &lt;fixed&gt;"),
        "{html}"
    );
    assert!(a.header("content-security-policy").unwrap().contains("script-src 'self'"));
    let g = body_str(&portal(&t, "globex.portal.test", "/"));
    assert!(g.contains("Globex Dental") && !g.contains("Acme") && !g.contains("#ff6600"));
    for host in ["nobody.portal.test", "evil.example", "acme.portal.test.evil.example"] {
        let r = portal(&t, host, "/");
        assert_eq!(r.status, 404, "{host}");
        let body = body_str(&r);
        assert!(!body.contains("Acme") && !body.contains("Globex"), "{host}: {body}");
    }
    assert_eq!(portal(&t, "acme.portal.test", "/portal.js").status, 200);
    // A portal host serves only its own client's API.
    let r = t.call(
        Request::new(Method::Get, &format!("/api/clients/{GLOBEX}/files"))
            .with_header("host", "acme.portal.test")
            .with_header("authorization", &format!("Bearer {acme}")),
    );
    assert_eq!(r.status, 404);
}

#[test]
fn the_widget_config_carries_branding_in_one_cold_query_and_none_warm() {
    let t = TestApp::new();
    let acme = t.login("admin@acme.test");
    t.req(
        Method::Put,
        &format!("/api/clients/{ACME}/branding"),
        Some(&acme),
        Some(json!({"primary_color": "#123456", "tagline": "Fast pipes"})),
    );
    let key = t.demo.acme_key.clone();
    let cfg = |t: &TestApp| {
        t.call(
            Request::new(Method::Get, &format!("/api/widget/v1/config?key={key}"))
                .with_header("host", API)
                .with_header("origin", "http://shop.localhost:3000"),
        )
    };
    let before_cold = t.p.queries.get();
    let first = cfg(&t);
    assert_eq!(first.status, 200, "{}", body_str(&first));
    assert_eq!(t.p.queries.get() - before_cold, 1, "a cold gate decision plus its config is one query");
    let v: Value = json_of(&first);
    assert_eq!(v["branding"]["primary_color"], "#123456");
    assert_eq!(v["branding"]["tagline"], "Fast pipes");
    let before = t.p.queries.get();
    assert_eq!(cfg(&t).status, 200);
    assert_eq!(t.p.queries.get(), before, "a warm config request runs no query");
    // Reading branding leaves the cache warm; an agency write reaches its clients' config at once.
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/branding"), Some(&acme), None).status, 200);
    let before = t.p.queries.get();
    assert_eq!(cfg(&t).status, 200);
    assert_eq!(t.p.queries.get(), before, "a branding read does not drop the gate cache");
    let agency = t.login("agency.admin@northwind.test");
    let r = t.req(
        Method::Put,
        &format!("/api/agencies/{}/branding", gatehouse::seed::AGENCY),
        Some(&agency),
        Some(json!({"secondary_color": "#0a0b0c"})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(json_of(&cfg(&t))["branding"]["secondary_color"], "#0a0b0c");
}
