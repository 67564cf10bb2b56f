//! Templates: a client made from one gets all of it in its creating batch; a template holds no
//! secrets and refuses what the endpoints it stands for would refuse; pushing a later version
//! applies its additions and keeps what each client changed, reporting both; another agency's
//! template is out of reach.

use crate::common::*;
use gatehouse::platform::http::Method;
use gatehouse::seed::{ACME, AGENCY};
use serde_json::{json, Value};

fn spec_v1() -> Value {
    json!({
        "plan": "growth",
        "feature_flags": {"widget_leads": false},
        "branding": {"primary_color": "#ABCDEF", "tagline": "Cuts that last"},
        "pipelines": [{"name": "Sales", "stages": ["Lead", "Won"]}],
        "services": [{"name": "Consultation", "duration_min": 30}],
        "integrations": ["twilio", "google_maps"],
    })
}

fn make_template(t: &TestApp, token: &str, spec: Value) -> String {
    let r = t.req(
        Method::Post,
        &format!("/api/agencies/{AGENCY}/templates"),
        Some(token),
        Some(json!({"name": "Salon", "spec": spec})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    assert_eq!(json_of(&r)["version"], 1);
    json_of(&r)["id"].as_str().unwrap().to_string()
}

fn make_client(t: &TestApp, token: &str, slug: &str, template: &str) -> String {
    let r = t.req(
        Method::Post,
        "/api/clients",
        Some(token),
        Some(json!({"name": slug, "slug": slug, "template_id": template})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    json_of(&r)["id"].as_str().unwrap().to_string()
}

fn get(t: &TestApp, token: &str, path: &str) -> Value {
    let r = t.req(Method::Get, path, Some(token), None);
    assert_eq!(r.status, 200, "{path}: {}", body_str(&r));
    json_of(&r)
}

fn names(v: &Value) -> Vec<String> {
    v["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn a_client_made_from_a_template_starts_with_all_of_it() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let tpl = make_template(&t, &agency, spec_v1());
    let id = make_client(&t, &agency, "salon-one", &tpl);

    let c = get(&t, &agency, &format!("/api/clients/{id}"));
    assert_eq!(c["plan"], "growth");
    assert_eq!(c["feature_flags"], json!({"widget_leads": false}));
    assert_eq!(c["template"], json!({"id": tpl, "version": 1}));
    assert_eq!(c["integrations"], json!(["google_maps", "twilio"]), "sorted");
    let pipes = get(&t, &agency, &format!("/api/clients/{id}/pipelines"));
    assert_eq!(names(&pipes), ["Sales"]);
    let p = pipes["items"][0]["id"].as_str().unwrap();
    let one = get(&t, &agency, &format!("/api/clients/{id}/pipelines/{p}"));
    let stages: Vec<&str> = one["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(stages, ["Lead", "Won"]);
    let svcs = get(&t, &agency, &format!("/api/clients/{id}/services"));
    assert_eq!(names(&svcs), ["Consultation"]);
    assert_eq!(svcs["items"][0]["duration_min"], 30);
    let b = get(&t, &agency, &format!("/api/clients/{id}/branding"));
    assert_eq!(b["own"]["primary_color"], "#abcdef", "normalised like the branding endpoint");
    assert_eq!(b["own"]["tagline"], "Cuts that last");

    // Integrations the template leaves out are off for this client, and settings say so.
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{id}/settings"),
        Some(&agency),
        Some(json!({"pipedrive": {"api_token": "x-123"}})),
    );
    assert_eq!((r.status, error_code(&r).as_str()), (403, "integration_disabled"));
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{id}/settings"),
        Some(&agency),
        Some(json!({"twilio": {"account_sid": "AC123"}})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let providers = json_of(&r)["providers"].as_array().unwrap().clone();
    let enabled: Vec<&str> =
        providers.iter().filter(|p| p["enabled"] == true).map(|p| p["provider"].as_str().unwrap()).collect();
    assert_eq!(enabled, ["google_maps", "twilio", "widget"], "the widget's own secret is never an integration");
    // The agency can open them all again.
    let r = t.req(Method::Put, &format!("/api/clients/{id}"), Some(&agency), Some(json!({"integrations": null})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(json_of(&r)["integrations"], Value::Null);

    let created =
        t.p.sql(&format!("SELECT metadata FROM audit_log WHERE tenant_id = '{id}' AND action = 'client.created'"));
    let meta: Value = serde_json::from_str(created[0]["metadata"].as_str().unwrap()).unwrap();
    assert_eq!(meta["template"], json!({"id": tpl, "version": 1}));
    // A body's own plan wins over the template's.
    let r = t.req(
        Method::Post,
        "/api/clients",
        Some(&agency),
        Some(json!({"name": "Two", "slug": "salon-two", "template_id": tpl, "plan": "starter"})),
    );
    assert_eq!(json_of(&r)["plan"], "starter");
}

#[test]
fn a_template_refuses_secrets_bad_parts_and_callers_without_the_permission() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let path = format!("/api/agencies/{AGENCY}/templates");
    let bad = [
        (json!({"settings": {"twilio": {"auth_token": "secret"}}}), "invalid_field"),
        (json!({"integrations": ["twilio"], "twilio_auth_token": "secret"}), "invalid_field"),
        (json!({"branding": {"primary_color": "red"}}), "invalid_color"),
        (json!({"branding": {"logo_file_id": "fil_x"}}), "invalid_field"),
        (json!({"branding": {"custom_css": "body { background: url(https://evil.test/x) }"}}), "invalid_css"),
        (json!({"integrations": ["acme-crm"]}), "unknown_provider"),
        (json!({"integrations": ["widget"]}), "unknown_provider"),
        (json!({"feature_flags": {"teleport": true}}), "invalid_feature_flags"),
        (json!({"plan": "platinum"}), "invalid_plan"),
        (json!({"pipelines": [{"name": "A", "stages": []}]}), "invalid_stages"),
        (json!({"pipelines": [{"name": "A", "stages": ["x"]}, {"name": "a", "stages": ["y"]}]}), "duplicate_name"),
        (json!({"services": [{"name": "S", "duration_min": 1}]}), "invalid_duration"),
    ];
    for (spec, code) in bad {
        let r = t.req(Method::Post, &path, Some(&agency), Some(json!({"name": "T", "spec": spec})));
        assert_eq!((r.status, error_code(&r)), (422, code.to_string()), "{spec}");
    }
    assert_eq!(t.p.sql("SELECT count(*) AS n FROM templates")[0]["n"], 0, "nothing half-written");

    let body = json!({"name": "T", "spec": {}});
    let user = t.login("agency.user@northwind.test");
    assert_eq!(t.req(Method::Post, &path, Some(&user), Some(body.clone())).status, 403);
    assert_eq!(t.req(Method::Get, &path, Some(&user), None).status, 200, "agency users read templates");
    let client_admin = t.login("admin@acme.test");
    assert_eq!(t.req(Method::Post, &path, Some(&client_admin), Some(body.clone())).status, 404);
    assert_eq!(t.req(Method::Get, &path, Some(&client_admin), None).status, 404);
}

#[test]
fn another_agencys_template_is_out_of_reach() {
    let t = TestApp::new();
    let platform = t.login("admin@gatehouse.test");
    let agency = t.login("agency.admin@northwind.test");
    let r =
        t.req(Method::Post, "/api/agencies", Some(&platform), Some(json!({"name": "Other", "slug": "other-agency"})));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let other = json_of(&r)["id"].as_str().unwrap().to_string();
    let r = t.req(
        Method::Post,
        &format!("/api/agencies/{other}/templates"),
        Some(&platform),
        Some(json!({"name": "Theirs", "spec": spec_v1()})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let theirs = json_of(&r)["id"].as_str().unwrap().to_string();

    for path in [format!("/api/agencies/{other}/templates"), format!("/api/agencies/{other}/templates/{theirs}")] {
        assert_eq!(t.req(Method::Get, &path, Some(&agency), None).status, 404, "{path}");
    }
    // Through its own agency's path, the foreign id is simply unknown.
    let r = t.req(Method::Get, &format!("/api/agencies/{AGENCY}/templates/{theirs}"), Some(&agency), None);
    assert_eq!(r.status, 404);
    let r =
        t.req(Method::Post, &format!("/api/agencies/{AGENCY}/templates/{theirs}/push"), Some(&agency), Some(json!({})));
    assert_eq!(r.status, 404);
    let r = t.req(
        Method::Post,
        "/api/clients",
        Some(&agency),
        Some(json!({"name": "X", "slug": "stolen", "template_id": theirs})),
    );
    assert_eq!((r.status, error_code(&r).as_str()), (422, "template_not_found"));
    assert!(t.p.sql("SELECT id FROM clients WHERE slug = 'stolen'").is_empty());
}

#[test]
fn pushing_a_version_applies_its_additions_and_keeps_what_clients_changed() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let tpl = make_template(&t, &agency, spec_v1());
    let kept = make_client(&t, &agency, "salon-kept", &tpl);
    let changed = make_client(&t, &agency, "salon-changed", &tpl);

    // One client changes its tagline, drops the Won stage and the service, and turns leads on.
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{changed}/branding"),
        Some(&agency),
        Some(json!({"tagline": "Our own words"})),
    );
    assert_eq!(r.status, 200);
    let pipes = get(&t, &agency, &format!("/api/clients/{changed}/pipelines"));
    let p = pipes["items"][0]["id"].as_str().unwrap().to_string();
    let one = get(&t, &agency, &format!("/api/clients/{changed}/pipelines/{p}"));
    let won = one["stages"][1]["id"].as_str().unwrap();
    let r = t.req(Method::Delete, &format!("/api/clients/{changed}/pipelines/{p}/stages/{won}"), Some(&agency), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let svc =
        get(&t, &agency, &format!("/api/clients/{changed}/services"))["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        t.req(Method::Delete, &format!("/api/clients/{changed}/services/{svc}"), Some(&agency), None).status,
        204
    );
    let r = t.req(
        Method::Put,
        &format!("/api/clients/{changed}"),
        Some(&agency),
        Some(json!({"feature_flags": {"widget_leads": true}})),
    );
    assert_eq!(r.status, 200);

    let mut v2 = spec_v1();
    v2["branding"] = json!({"primary_color": "#ABCDEF", "tagline": "Cuts that last longer", "secondary_color": "#111"});
    v2["pipelines"] = json!([
        {"name": "Sales", "stages": ["Lead", "Qualified", "Won"]},
        {"name": "Onboarding", "stages": ["Kickoff", "Live"]},
    ]);
    v2["services"] = json!([{"name": "Consultation", "duration_min": 30}, {"name": "Review", "duration_min": 15}]);
    v2["feature_flags"] = json!({"widget_leads": false, "booking": false});
    v2["integrations"] = json!(["twilio", "google_maps", "openai"]);
    let r = t.req(
        Method::Post,
        &format!("/api/agencies/{AGENCY}/templates/{tpl}/versions"),
        Some(&agency),
        Some(json!({"spec": v2})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    assert_eq!(json_of(&r)["version"], 2);
    assert_eq!(json_of(&r)["name"], "Salon", "the name is kept");
    assert_eq!(json_of(&r)["clients"], 2);

    let push = |body: Value| {
        let r = t.req(Method::Post, &format!("/api/agencies/{AGENCY}/templates/{tpl}/push"), Some(&agency), Some(body));
        assert_eq!(r.status, 200, "{}", body_str(&r));
        json_of(&r)
    };
    let report = push(json!({"version": 2}));
    let of = |id: &str| report["clients"].as_array().unwrap().iter().find(|c| c["client_id"] == id).unwrap().clone();
    let applied = |c: &Value| -> Vec<String> {
        let mut a: Vec<String> = c["applied"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().into()).collect();
        a.sort();
        a
    };
    let k = of(&kept);
    assert_eq!(k["status"], "applied");
    assert_eq!(
        applied(&k),
        [
            "branding.secondary_color",
            "branding.tagline",
            "feature_flags.booking: false",
            "integration openai",
            "pipeline Onboarding",
            "service Review",
            "stage Sales / Qualified",
        ]
    );
    assert_eq!(k["skipped"], json!([]));
    let c = of(&changed);
    assert_eq!(
        applied(&c),
        [
            "branding.secondary_color",
            "feature_flags.booking: false",
            "integration openai",
            "pipeline Onboarding",
            "service Review",
            "stage Sales / Qualified",
        ]
    );
    let skipped: Vec<&str> = c["skipped"].as_array().unwrap().iter().map(|s| s["item"].as_str().unwrap()).collect();
    assert_eq!(skipped, ["branding.tagline", "stage Sales / Won", "service Consultation"]);

    // What the report says is what the clients hold.
    let b = get(&t, &agency, &format!("/api/clients/{changed}/branding"));
    assert_eq!(
        (b["own"]["tagline"].as_str(), b["own"]["secondary_color"].as_str()),
        (Some("Our own words"), Some("#111"))
    );
    let one = get(&t, &agency, &format!("/api/clients/{changed}/pipelines/{p}"));
    let stages: Vec<&str> = one["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(stages, ["Lead", "Qualified"], "Won stays deleted; Qualified is appended");
    // (The pushed flags turn booking off, so its API answers 403: read the table.)
    let svcs = t.p.sql(&format!("SELECT name FROM services WHERE client_id = '{changed}'"));
    assert_eq!(svcs.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), ["Review"]);
    let cc = get(&t, &agency, &format!("/api/clients/{changed}"));
    assert_eq!(cc["feature_flags"], json!({"widget_leads": true, "booking": false}));
    assert_eq!(cc["template"]["version"], 2);
    assert_eq!(names(&get(&t, &agency, &format!("/api/clients/{kept}/pipelines"))).len(), 2);

    // Pushing again changes nothing and writes no audit row.
    let audit_rows = || {
        t.p.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'client.template_pushed'")[0]["n"].as_i64().unwrap()
    };
    assert_eq!(audit_rows(), 2);
    let again = push(json!({}));
    assert!(again["clients"].as_array().unwrap().iter().all(|c| c["status"] == "up_to_date"), "{again}");
    assert_eq!(audit_rows(), 2);
    assert_eq!(
        error_code(&t.req(
            Method::Post,
            &format!("/api/agencies/{AGENCY}/templates/{tpl}/push"),
            Some(&agency),
            Some(json!({"version": 7})),
        )),
        "invalid_version"
    );
    // Only the agency's managers push.
    let user = t.login("agency.user@northwind.test");
    let r = t.req(Method::Post, &format!("/api/agencies/{AGENCY}/templates/{tpl}/push"), Some(&user), Some(json!({})));
    assert_eq!(r.status, 403);
}

#[test]
fn a_templates_shard_rows_are_held_only_beside_the_change_and_go_in_once_however_often_applied() {
    use gatehouse::access::relay::{ADD_PIPELINE, ADD_SERVICE, ADD_STAGE, HOLD_IF_CHANGED};
    use gatehouse::templates::SET_BRANDING;
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let tpl = make_template(&t, &agency, spec_v1());
    let id = make_client(&t, &agency, "guarded", &tpl);
    assert!(t.p.sql("SELECT id FROM shard_writes").is_empty(), "the creating request applied its hold");
    let row = &t.p.sql(&format!("SELECT updated_at, template_version FROM clients WHERE id = '{id}'"))[0];
    let (at, v) = (row["updated_at"].as_i64().unwrap(), row["template_version"].as_i64().unwrap());
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| t.p.conn_for(sql).execute(sql, params).unwrap();
    // Branding stays in the control plane beside the client row, guarded by its instant, version
    // and agency.
    let null: Option<String> = None;
    for (when, version, agency_id) in
        [(at + 1, v, AGENCY), (at, v + 1, AGENCY), (at, v, "agy_zzzzzzzzzzzzzzzzzzzzzzzz")]
    {
        assert_eq!(
            run(
                SET_BRANDING,
                &[&id, &"#000", &null, &null, &null, &null, &null, &null, &null, &"usr_x", &when, &agency_id, &version]
            ),
            0
        );
    }
    // A hold is written only after a change that touched a row.
    let touch = "UPDATE clients SET updated_at = updated_at WHERE id = ?1 AND template_version = ?2";
    assert_eq!(run(touch, &[&id, &(v + 1)]), 0);
    assert_eq!(run(HOLD_IF_CHANGED, &[&"sw_a", &id, &"[]", &at]), 0, "after a change that did not happen");
    assert_eq!(run(touch, &[&id, &v]), 1);
    assert_eq!(run(HOLD_IF_CHANGED, &[&"sw_b", &id, &"[]", &at]), 1);
    // Applied twice, each shard statement adds its row once.
    for expected in [1, 0] {
        assert_eq!(run(ADD_PIPELINE, &[&"pipe_x", &id, &"Late", &at]), expected);
        assert_eq!(run(ADD_STAGE, &[&"stage_x", &id, &"pipe_x", &"Only", &at, &20]), expected);
        assert_eq!(run(ADD_SERVICE, &[&"svc_x", &id, &"Late", &30, &0, &"USD", &0, &0, &1, &at]), expected);
    }
    // A name the client has already is not added under another id either.
    assert_eq!(run(ADD_PIPELINE, &[&"pipe_y", &id, &"Late", &at]), 0);
}

#[test]
fn a_clients_integrations_hold_on_its_custom_portal_domain_too() {
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let platform = t.login("admin@gatehouse.test");
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/domains"),
        Some(&agency),
        Some(json!({"domain": "portal.acme-plumbing.example", "purpose": "portal"})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    let d = json_of(&r)["id"].as_str().unwrap().to_string();
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/domains/{d}/verify"),
        Some(&platform),
        Some(json!({"force": true})),
    );
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let r =
        t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(&agency), Some(json!({"integrations": ["twilio"]})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    // Signed in on the custom domain, the client's row comes from the domain lookup: it must be
    // the whole row, integrations included.
    let host = "portal.acme-plumbing.example";
    let pw = t.password("admin@acme.test");
    let login = t.req_on(
        host,
        Method::Post,
        "/api/auth/login",
        None,
        Some(json!({"email": "admin@acme.test", "password": pw})),
    );
    assert_eq!(login.status, 200, "{}", body_str(&login));
    let token = json_of(&login)["access_token"].as_str().unwrap().to_string();
    let path = format!("/api/clients/{ACME}/settings");
    let r = t.req_on(host, Method::Put, &path, Some(&token), Some(json!({"pipedrive": {"api_token": "x"}})));
    assert_eq!((r.status, error_code(&r).as_str()), (403, "integration_disabled"));
    let r = t.req_on(host, Method::Put, &path, Some(&token), Some(json!({"twilio": {"account_sid": "AC1"}})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
}
