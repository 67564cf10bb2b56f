//! Booking through the real router over SQLite: services, staff, hours and time off, the
//! client's time zone, availability across DST changes, bookings and their refusals, status
//! transitions, and isolation. (The 20-way race for one slot runs under wrangler dev.)

use crate::common::*;
use gatehouse::platform::http::{Method, Response};
use gatehouse::seed::{ACME, GLOBEX};
use serde_json::{json, Value};

fn call(t: &TestApp, token: &str, m: Method, path: &str, body: Option<Value>) -> Response {
    t.req(m, &format!("/api/clients/{ACME}{path}"), Some(token), body)
}

struct Setup {
    t: TestApp,
    admin: String,
    service: String,
    staff: String,
}

/// Acme in `zone`, a 60-minute service with a 15-minute buffer after, and one staff member who
/// offers it on weekdays 09:00-17:00 and Sundays 00:00-06:00 (the hours a DST change falls in).
fn setup(zone: &str) -> Setup {
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let r = t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(&admin), Some(json!({"time_zone": zone})));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let s = call(
        &t,
        &admin,
        Method::Post,
        "/services",
        Some(
            json!({"name": "Consultation", "duration_min": 60, "buffer_after_min": 15, "price_minor": 9000, "currency": "usd"}),
        ),
    );
    assert_eq!(s.status, 201, "{}", body_str(&s));
    let service = json_of(&s)["id"].as_str().unwrap().to_string();
    let mut hours: Vec<Value> = (1..=5).map(|d| json!({"weekday": d, "start": "09:00", "end": "17:00"})).collect();
    hours.push(json!({"weekday": 7, "start": "00:00", "end": "06:00"}));
    let st = call(
        &t,
        &admin,
        Method::Post,
        "/staff",
        Some(json!({"name": "Riley", "service_ids": [service], "hours": hours})),
    );
    assert_eq!(st.status, 201, "{}", body_str(&st));
    let staff = json_of(&st)["id"].as_str().unwrap().to_string();
    Setup { t, admin, service, staff }
}

fn slots(s: &Setup, day: &str) -> Vec<String> {
    let r =
        call(&s.t, &s.admin, Method::Get, &format!("/availability?service={}&from={day}&to={day}", s.service), None);
    assert_eq!(r.status, 200, "{}", body_str(&r));
    json_of(&r)["staff"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["starts_at"].as_str().unwrap().to_string())
        .collect()
}

fn book(s: &Setup, starts_at: &str, extra: Value) -> Response {
    let mut body = json!({"service_id": s.service, "staff_id": s.staff, "starts_at": starts_at});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    call(&s.t, &s.admin, Method::Post, "/appointments", Some(body))
}

#[test]
fn availability_is_dst_correct_in_new_york_and_berlin() {
    let s = setup("America/New_York");
    assert_eq!(
        slots(&s, "2027-03-14"),
        [
            "2027-03-14T05:00:00Z",
            "2027-03-14T06:00:00Z",
            "2027-03-14T07:00:00Z",
            "2027-03-14T08:00:00Z",
            "2027-03-14T09:00:00Z"
        ],
        "spring forward: no 02:00"
    );
    assert_eq!(slots(&s, "2027-11-07").len(), 6, "fall back: 01:00 once, then 02:00-05:00 EST");
    assert_eq!(slots(&s, "2027-11-07")[2], "2027-11-07T07:00:00Z");
    // A booking on the spring-forward day lands at the right UTC instant, and its local label.
    let r = book(&s, "2027-03-14T07:00:00Z", json!({}));
    assert_eq!(r.status, 201, "{}", body_str(&r));
    assert_eq!(json_of(&r)["local_start"], "2027-03-14T03:00");
    assert_eq!(json_of(&r)["time_zone"], "America/New_York");
    let gap = book(&s, "2027-03-14T07:30:00Z", json!({}));
    assert_eq!((gap.status, error_code(&gap)), (422, "off_grid".to_string()));

    let b = setup("Europe/Berlin");
    assert_eq!(slots(&b, "2027-03-28").len(), 5);
    assert_eq!(slots(&b, "2027-10-31").len(), 6);
    assert_eq!(slots(&b, "2027-10-31")[3], "2027-10-31T02:00:00Z", "03:00 CET after the repeated hour");
}

#[test]
fn the_database_refuses_a_double_booking_counting_buffers() {
    let s = setup("America/New_York");
    // Wednesday 2027-06-09, EDT: 10:00 local = 14:00Z.
    let first = book(&s, "2027-06-09T14:00:00Z", json!({"contact": {"name": "Ada", "email": "ada@example.com"}}));
    assert_eq!(first.status, 201, "{}", body_str(&first));
    let again = book(&s, "2027-06-09T14:00:00Z", json!({"contact": {"name": "Bob", "email": "bob@example.com"}}));
    assert_eq!((again.status, error_code(&again)), (409, "slot_taken".to_string()));
    assert_eq!(
        s.t.p.sql("SELECT count(*) AS n FROM contacts WHERE email = 'bob@example.com'")[0]["n"],
        0,
        "a refused booking leaves no contact behind"
    );
    // 11:00 starts inside the first one's 15-minute buffer (10:00-11:15).
    let buffered = book(&s, "2027-06-09T15:00:00Z", json!({}));
    assert_eq!(buffered.status, 409);
    assert!(!slots(&s, "2027-06-09").contains(&"2027-06-09T15:00:00Z".to_string()));
    // Cancelling frees the slot.
    let id = json_of(&first)["id"].as_str().unwrap().to_string();
    let c = call(&s.t, &s.admin, Method::Patch, &format!("/appointments/{id}"), Some(json!({"status": "cancelled"})));
    assert_eq!(c.status, 200, "{}", body_str(&c));
    assert_eq!(
        book(&s, "2027-06-09T14:00:00Z", json!({"contact": {"name": "Ada", "email": "ADA@example.com"}})).status,
        201
    );
    assert_eq!(
        s.t.p.sql("SELECT count(*) AS n FROM contacts WHERE email = 'ada@example.com'")[0]["n"],
        1,
        "the same email reuses its contact"
    );
}

#[test]
fn bad_requests_are_refused_with_a_stable_code_and_write_nothing() {
    let s = setup("America/New_York");
    let other = call(&s.t, &s.admin, Method::Post, "/services", Some(json!({"name": "Other", "duration_min": 30})));
    let other = json_of(&other)["id"].as_str().unwrap().to_string();
    let globex = s.t.login("admin@globex.test");
    let gsvc =
        s.t.req(Method::Post, &format!("/api/clients/{GLOBEX}/services"), Some(&globex), Some(json!({"name": "G"})));
    let gsvc = json_of(&gsvc)["id"].as_str().unwrap().to_string();
    let before = s.t.p.sql("SELECT count(*) AS n FROM appointments")[0]["n"].clone();
    for (starts_at, extra, code) in [
        ("2026-12-01T14:00:00Z", json!({}), "slot_in_past"),
        ("2027-06-09T12:00:00Z", json!({}), "outside_working_hours"),
        ("2027-06-12T14:00:00Z", json!({}), "outside_working_hours"),
        ("2027-06-09T14:15:00Z", json!({}), "off_grid"),
        ("2027-06-09 14:00", json!({}), "invalid_time"),
        ("2027-06-09T14:00:00Z", json!({"service_id": other}), "service_not_offered"),
        ("2027-06-09T14:00:00Z", json!({"service_id": gsvc}), "unknown_service"),
        ("2027-06-09T14:00:00Z", json!({"staff_id": "stf_000000000000000000000000"}), "unknown_staff"),
        ("2027-06-09T14:00:00Z", json!({"contact_id": "con_000000000000000000000000"}), "unknown_contact"),
        ("2027-06-09T14:00:00Z", json!({"contact": {"name": "X", "email": "nope"}}), "invalid_email"),
    ] {
        let r = book(&s, starts_at, extra.clone());
        assert_eq!((r.status, error_code(&r)), (422, code.to_string()), "{starts_at} {extra}");
    }
    assert_eq!(s.t.p.sql("SELECT count(*) AS n FROM appointments")[0]["n"], before);
    // Time off on that day closes it.
    let off = call(
        &s.t,
        &s.admin,
        Method::Post,
        &format!("/staff/{}/time-off", s.staff),
        Some(json!({"start_date": "2027-06-09", "end_date": "2027-06-10", "reason": "  Conference  "})),
    );
    assert_eq!(off.status, 201, "{}", body_str(&off));
    assert_eq!(json_of(&off)["reason"], "Conference", "the answer is what was stored");
    let listed = call(&s.t, &s.admin, Method::Get, &format!("/staff/{}/time-off?from=2027-06-01", s.staff), None);
    assert_eq!(json_of(&listed)["items"][0]["reason"], "Conference");
    for bad in ["from=2027-6-1", "to=tomorrow", "from=2027-02-30"] {
        let r = call(&s.t, &s.admin, Method::Get, &format!("/staff/{}/time-off?{bad}", s.staff), None);
        assert_eq!((r.status, error_code(&r)), (400, "invalid_date".to_string()), "{bad}");
    }
    assert!(slots(&s, "2027-06-09").is_empty());
    assert_eq!(error_code(&book(&s, "2027-06-09T14:00:00Z", json!({}))), "outside_working_hours");
    // A bad zone is refused; the client keeps its own.
    let r = s.t.req(
        Method::Put,
        &format!("/api/clients/{ACME}"),
        Some(&s.admin),
        Some(json!({"time_zone": "Mars/Olympus"})),
    );
    assert_eq!((r.status, error_code(&r)), (422, "invalid_time_zone".to_string()));
    let bad_range = call(
        &s.t,
        &s.admin,
        Method::Get,
        &format!("/availability?service={}&from=2027-06-01&to=2027-08-01", s.service),
        None,
    );
    assert_eq!(bad_range.status, 400);
}

#[test]
fn appointments_move_only_along_allowed_transitions() {
    let s = setup("UTC");
    let r = book(&s, "2027-06-09T09:00:00Z", json!({}));
    let path = format!("/appointments/{}", json_of(&r)["id"].as_str().unwrap());
    let to = |status: &str| call(&s.t, &s.admin, Method::Patch, &path, Some(json!({"status": status})));
    assert_eq!(to("scheduled").status, 422, "not a target");
    assert_eq!(to("confirmed").status, 200);
    assert_eq!(to("confirmed").status, 422, "confirmed → confirmed");
    assert_eq!(to("completed").status, 200);
    for next in ["cancelled", "confirmed", "completed"] {
        let r = to(next);
        assert_eq!((r.status, error_code(&r)), (422, "invalid_transition".to_string()), "{next}");
    }
    assert_eq!(s.t.p.sql("SELECT count(*) AS n FROM audit_log WHERE action = 'appointment.status_changed'")[0]["n"], 2);
    let list = call(&s.t, &s.admin, Method::Get, "/appointments?status=completed&from=2027-06-01T00:00:00Z", None);
    assert_eq!(json_of(&list)["items"].as_array().unwrap().len(), 1);
}

#[test]
fn staff_services_and_hours_are_validated_and_client_scoped() {
    let s = setup("UTC");
    let globex = s.t.login("admin@globex.test");
    let gsvc =
        s.t.req(Method::Post, &format!("/api/clients/{GLOBEX}/services"), Some(&globex), Some(json!({"name": "G"})));
    let gsvc = json_of(&gsvc)["id"].as_str().unwrap().to_string();
    let globex_user =
        s.t.p.sql("SELECT id FROM users WHERE email = 'admin@globex.test'")[0]["id"].as_str().unwrap().to_string();
    let staff_before = s.t.p.sql("SELECT count(*) AS n FROM staff")[0]["n"].clone();
    for (body, code) in [
        (json!({"name": "X", "service_ids": [gsvc]}), "unknown_service"),
        (json!({"name": "X", "user_id": globex_user}), "unknown_user"),
        (json!({"name": "X", "hours": [{"weekday": 1, "start": "12:00", "end": "09:00"}]}), "invalid_hours"),
        (
            json!({"name": "X", "hours": [{"weekday": 1, "start": "09:00", "end": "12:00"}, {"weekday": 1, "start": "11:00", "end": "13:00"}]}),
            "invalid_hours",
        ),
    ] {
        let r = call(&s.t, &s.admin, Method::Post, "/staff", Some(body.clone()));
        assert_eq!((r.status, error_code(&r)), (422, code.to_string()), "{body}");
    }
    assert_eq!(s.t.p.sql("SELECT count(*) AS n FROM staff")[0]["n"], staff_before, "nothing half-written");
    let hours = call(
        &s.t,
        &s.admin,
        Method::Put,
        &format!("/staff/{}/hours", s.staff),
        Some(json!({"hours": [{"weekday": 2, "start": "10:00", "end": "12:00"}]})),
    );
    assert_eq!(json_of(&hours)["hours"], json!([{"weekday": 2, "start": "10:00", "end": "12:00"}]));
    // Globex sees none of Acme's booking data, by its own path or Acme's.
    for path in [
        format!("/api/clients/{GLOBEX}/staff/{}", s.staff),
        format!("/api/clients/{GLOBEX}/services/{}", s.service),
        format!("/api/clients/{ACME}/staff/{}", s.staff),
        format!("/api/clients/{ACME}/availability?service={}&from=2027-06-08&to=2027-06-08", s.service),
    ] {
        assert_eq!(s.t.req(Method::Get, &path, Some(&globex), None).status, 404, "{path}");
    }
    let booked = s.t.req(
        Method::Post,
        &format!("/api/clients/{GLOBEX}/appointments"),
        Some(&globex),
        Some(json!({"service_id": s.service, "staff_id": s.staff, "starts_at": "2027-06-08T10:00:00Z"})),
    );
    assert_eq!((booked.status, error_code(&booked)), (422, "unknown_service".to_string()));
    // A booked service or staff member is deactivated, not deleted.
    assert_eq!(book(&s, "2027-06-08T10:00:00Z", json!({})).status, 201);
    let del = call(&s.t, &s.admin, Method::Delete, &format!("/services/{}", s.service), None);
    assert_eq!((del.status, error_code(&del)), (409, "service_booked".to_string()));
    let del = call(&s.t, &s.admin, Method::Delete, &format!("/staff/{}", s.staff), None);
    assert_eq!((del.status, error_code(&del)), (409, "staff_booked".to_string()));
    let viewer = s.t.login("viewer@acme.test");
    assert_eq!(call(&s.t, &viewer, Method::Get, "/appointments", None).status, 200);
    assert_eq!(call(&s.t, &viewer, Method::Post, "/services", Some(json!({"name": "V"}))).status, 403);
}

#[test]
fn a_retried_widget_booking_books_once_and_answers_with_the_first() {
    use gatehouse::platform::http::Request;
    let s = setup("UTC");
    let book_via_widget = |sub: &str, email: &str| {
        let body = json!({"service_id": s.service, "staff_id": s.staff, "starts_at": "2027-06-09T09:00:00Z",
            "name": "Wid Get", "email": email, "elapsed_ms": 5000, "submission_id": sub});
        s.t.call(
            Request::new(Method::Post, &format!("/api/widget/v1/bookings?key={}", s.t.demo.acme_key))
                .with_header("host", API)
                .with_header("origin", "http://shop.localhost:5173")
                .with_header("cf-connecting-ip", "198.51.100.9")
                .with_header("content-type", "application/json")
                .with_body(body.to_string()),
        )
    };
    let first = book_via_widget("retry-0001-abcd", "wid@example.com");
    assert_eq!(first.status, 201, "{}", body_str(&first));
    let again = book_via_widget("retry-0001-abcd", "wid@example.com");
    assert_eq!(again.status, 200, "{}", body_str(&again));
    assert_eq!(json_of(&again)["id"], json_of(&first)["id"]);
    assert_eq!(json_of(&again)["replayed"], true);
    assert_eq!(json_of(&again)["status"], "scheduled");
    let other = book_via_widget("retry-0002-abcd", "other@example.com");
    assert_eq!((other.status, error_code(&other)), (409, "slot_taken".to_string()), "another submission for the slot");
    assert_eq!(s.t.p.sql("SELECT count(*) AS n FROM appointments WHERE source = 'widget'")[0]["n"], 1);
    // A replay after the appointment changed reports what it is now, not what it was.
    let id = json_of(&first)["id"].as_str().unwrap().to_string();
    let cancel =
        call(&s.t, &s.admin, Method::Patch, &format!("/appointments/{id}"), Some(json!({"status": "cancelled"})));
    assert_eq!(cancel.status, 200, "{}", body_str(&cancel));
    let late = book_via_widget("retry-0001-abcd", "wid@example.com");
    assert_eq!((late.status, json_of(&late)["status"].clone()), (200, json!("cancelled")));
}

#[test]
fn the_booking_and_widget_leads_flags_turn_their_routes_and_the_widget_parts_off_and_on() {
    use gatehouse::platform::http::Request;
    let t = TestApp::new();
    let agency = t.login("agency.admin@northwind.test");
    let admin = t.login("admin@acme.test");
    let flags = |token: &str, v: serde_json::Value| {
        t.req(Method::Put, &format!("/api/clients/{ACME}"), Some(token), Some(json!({"feature_flags": v})))
    };
    let widget = |method: Method, path: &str, body: Option<serde_json::Value>| {
        let mut r = Request::new(method, &format!("/api/widget/v1/{path}?key={}", t.demo.acme_key))
            .with_header("host", API)
            .with_header("origin", "http://shop.localhost:8080");
        if let Some(b) = body {
            r = r.with_header("content-type", "application/json").with_body(b.to_string());
        }
        t.call(r)
    };
    // Flags are the agency's to set, by name, as booleans.
    assert_eq!(error_code(&flags(&admin, json!({"booking": false}))), "forbidden_field");
    assert_eq!(error_code(&flags(&agency, json!({"bookings": false}))), "invalid_feature_flags");
    assert_eq!(error_code(&flags(&agency, json!({"booking": "off"}))), "invalid_feature_flags");
    assert_eq!(json_of(&widget(Method::Get, "config", None))["booking"]["enabled"], true);
    let r = flags(&agency, json!({"booking": false}));
    assert_eq!(r.status, 200, "{}", body_str(&r));
    assert_eq!(json_of(&r)["feature_flags"], json!({"booking": false}));
    // Off: the booking API and the widget's Book tab.
    for (method, path) in [
        (Method::Get, format!("/api/clients/{ACME}/services")),
        (Method::Get, format!("/api/clients/{ACME}/staff")),
        (Method::Get, format!("/api/clients/{ACME}/appointments")),
        (Method::Post, format!("/api/clients/{ACME}/services")),
    ] {
        let r = t.req(method, &path, Some(&admin), Some(json!({})));
        assert_eq!((r.status, error_code(&r).as_str()), (403, "feature_disabled"), "{path}");
    }
    assert_eq!(json_of(&widget(Method::Get, "config", None))["booking"]["enabled"], false);
    assert_eq!(error_code(&widget(Method::Get, "services", None)), "feature_disabled");
    // A foreign client is still 404 before any flag is read.
    let globex = t.login("admin@globex.test");
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/services"), Some(&globex), None).status, 404);
    // Leads off too; then booking back on: the widget is a Book tab alone.
    assert_eq!(flags(&agency, json!({"widget_leads": false})).status, 200);
    let lead = widget(Method::Post, "leads", Some(json!({"name": "L", "email": "l@example.com"})));
    assert_eq!((lead.status, error_code(&lead).as_str()), (403, "feature_disabled"));
    assert_eq!(flags(&agency, json!({"booking": true})).status, 200);
    let config = json_of(&widget(Method::Get, "config", None));
    assert_eq!((config["booking"]["enabled"].clone(), config["form"]["enabled"].clone()), (json!(true), json!(false)));
    assert_eq!(t.req(Method::Get, &format!("/api/clients/{ACME}/services"), Some(&admin), None).status, 200);
}

#[test]
fn availability_covers_every_staff_member_who_offers_the_service_however_many_there_are() {
    let s = setup("UTC");
    // 120 more staff who offer nothing, all sorting before the one who does: the offering staff
    // member is then past any first page of staff.
    for n in 100..220 {
        s.t.p.exec(&format!(
            "INSERT INTO staff (id, client_id, name, user_id, active, created_at, updated_at) \
             VALUES ('stf_0000000000000000000{n:05}', '{ACME}', 'Idle {n}', NULL, 1, 0, 0)"
        ));
    }
    let before = s.t.p.queries.get();
    let r = call(
        &s.t,
        &s.admin,
        Method::Get,
        &format!("/availability?service={}&from=2027-06-09&to=2027-06-09", s.service),
        None,
    );
    let ran = s.t.p.queries.get() - before;
    assert_eq!(r.status, 200, "{}", body_str(&r));
    let staff = json_of(&r)["staff"].as_array().unwrap().clone();
    assert_eq!(staff.len(), 1, "only the one who offers it");
    assert_eq!(staff[0]["staff_id"], s.staff.as_str());
    assert!(!staff[0]["slots"].as_array().unwrap().is_empty());
    assert!(ran < 20, "the idle staff cost no queries: {ran}");
}

#[test]
fn the_widget_offers_booking_exactly_while_an_active_staff_member_offers_an_active_service() {
    use gatehouse::platform::http::Request;
    let t = TestApp::new();
    let admin = t.login("admin@acme.test");
    let offered = || {
        let r = t.call(
            Request::new(Method::Get, &format!("/api/widget/v1/config?key={}", t.demo.acme_key))
                .with_header("host", API)
                .with_header("origin", "http://shop.localhost:8080"),
        );
        let from_widget = json_of(&r)["booking"]["enabled"].as_bool().unwrap();
        // The directory row the gate reads agrees with the shard's rows.
        let stored = t.p.sql(&format!("SELECT bookable FROM clients WHERE id = '{ACME}'"))[0]["bookable"].as_i64();
        assert_eq!(stored, Some(from_widget as i64));
        from_widget
    };
    let patch = |path: &str, body: serde_json::Value| {
        let r = t.req(Method::Patch, &format!("/api/clients/{ACME}/{path}"), Some(&admin), Some(body));
        assert_eq!(r.status, 200, "{path}: {}", body_str(&r));
    };
    let staff = t.p.sql(&format!("SELECT id FROM staff WHERE client_id = '{ACME}' ORDER BY id"));
    let services = t.p.sql(&format!("SELECT id FROM services WHERE client_id = '{ACME}' ORDER BY id"));
    let (stf1, stf2) = (staff[0]["id"].as_str().unwrap(), staff[1]["id"].as_str().unwrap());
    let (svc1, svc2) = (services[0]["id"].as_str().unwrap(), services[1]["id"].as_str().unwrap());
    assert!(offered(), "the demo's staff offer its services");
    // Both services off: nothing to book.
    patch(&format!("services/{svc1}"), json!({"active": false}));
    assert!(offered(), "the second service is still offered");
    patch(&format!("services/{svc2}"), json!({"active": false}));
    assert!(!offered());
    patch(&format!("services/{svc2}"), json!({"active": true}));
    assert!(offered());
    // Staff off, then one back offering nothing, then offering the active service.
    patch(&format!("staff/{stf1}"), json!({"active": false}));
    patch(&format!("staff/{stf2}"), json!({"active": false}));
    assert!(!offered());
    patch(&format!("staff/{stf2}"), json!({"active": true, "service_ids": []}));
    assert!(!offered(), "an active member who offers nothing");
    patch(&format!("staff/{stf2}"), json!({"service_ids": [svc2]}));
    assert!(offered());
    // A new member offering the active service keeps it on when the other leaves.
    let r = t.req(
        Method::Post,
        &format!("/api/clients/{ACME}/staff"),
        Some(&admin),
        Some(json!({"name": "New", "service_ids": [svc2]})),
    );
    assert_eq!(r.status, 201, "{}", body_str(&r));
    patch(&format!("staff/{stf2}"), json!({"active": false}));
    assert!(offered());
}
