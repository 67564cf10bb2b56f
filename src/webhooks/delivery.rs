//! From the outbox to the receiver.
//!
//! 1. **Drain** (`drain`): undispatched events fan out into one delivery per subscribed, active
//!    endpoint (in one statement, idempotent by `(endpoint, event)`), and deliveries not yet queued
//!    go onto the Cloudflare Queue, delayed until they are due. The request that recorded an event
//!    drains after its response (`wait_until`); the cron drains too, and re-queues any delivery
//!    that has been due for `requeue_after_secs` without an attempt, so a message lost with a
//!    dying isolate strands nothing.
//! 2. **Deliver** (`deliver`, the queue consumer): a delivery is claimed with a lease inside one
//!    UPDATE, so two consumers never send it at once; the URL is checked again (DNS included);
//!    the event is signed and POSTed with a timeout and no redirects; the attempt, the delivery's
//!    new state and the endpoint's failure streak are written in one batch.
//! 3. **Retry**: timeouts, network errors, 408, 429 and 5xx retry on the configured schedule with
//!    ±10% jitter (a `Retry-After` in seconds wins); other answers, and refused URLs, end the
//!    delivery at once. After the last attempt it is `dead`, and can be replayed.
//! 4. **Auto-disable**: an endpoint whose attempts fail `disable_after_failures` times in a row is
//!    disabled, audited, and its pending deliveries end.

use serde::Serialize;
use serde_json::{json, Value};

use super::target::{self, CheckError, Refusal};
use super::{one as endpoint, seq_cursor, signing, signing_secrets, EndpointRow, END_PENDING};
use crate::access::audit::{self, Actor, Event};
use crate::access::roles::{Permission, Principal};
use crate::access::{self, ClientScope};
use crate::platform::error::{ApiError, ApiResult};
use crate::platform::extract::{json_body, page_params, page_response};
use crate::platform::http::{Request, Response};
use crate::platform::ids::{looks_like_id, new_id};
use crate::platform::ports::{
    col_i64, col_str, decode, Param, Platform, Post, PostOutcome, QueueMessage, Stmt, RESPONSE_HEAD_BYTES,
};
use crate::platform::{tz, Ctx, Outbox};

/// Events fanned out per drain round, and rounds per drain.
const DRAIN_BATCH: i64 = 100;
const DRAIN_ROUNDS: usize = 5;
/// Deliveries queued per drain.
const QUEUE_BATCH: i64 = 500;
/// The longest a queue message may be delayed.
const MAX_DELAY_SECS: i64 = 43_200;
/// Rows of each kind deleted by one prune.
const PRUNE_BATCH: i64 = 500;
/// Deliveries replayed by one bulk replay.
const MAX_BULK_REPLAY: i64 = 1000;

pub const UNDISPATCHED_EVENTS: &str = "SELECT seq FROM events WHERE dispatched_at IS NULL \
    AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants) ORDER BY seq LIMIT ?1";
/// One delivery per event and subscribed active endpoint of the event's client (an endpoint gets
/// only events recorded after it was made); a repeat is a no-op.
pub const FAN_OUT: &str = "INSERT INTO webhook_deliveries (id, client_id, endpoint_id, event_id, event_seq, status, \
    attempts, next_attempt_at, created_at, updated_at) \
    SELECT 'whd_' || lower(hex(randomblob(12))), e.client_id, w.id, e.id, e.seq, 'pending', 0, ?2, ?2, ?2 \
    FROM events e JOIN webhook_endpoints w ON w.client_id = e.client_id AND w.status = 'active' \
    WHERE e.seq IN (SELECT value FROM json_each(?1)) AND e.dispatched_at IS NULL AND w.created_at <= e.created_at \
    AND EXISTS (SELECT 1 FROM json_each(w.event_types) t WHERE t.value = e.type OR t.value = '*') \
    ORDER BY e.seq ON CONFLICT (endpoint_id, event_id) DO NOTHING";
pub const MARK_DISPATCHED: &str =
    "UPDATE events SET dispatched_at = ?2 WHERE seq IN (SELECT value FROM json_each(?1)) AND dispatched_at IS NULL";
/// Marks and returns pending deliveries never queued, or due for `?2` ms with no attempt (their
/// message was lost), in one statement: two drains at once never queue the same delivery.
pub const DELIVERIES_TO_QUEUE: &str = "UPDATE webhook_deliveries SET queued_at = ?1 WHERE id IN (SELECT id FROM \
    webhook_deliveries WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < ?1) \
    AND (queued_at IS NULL OR (next_attempt_at <= ?1 - ?2 AND queued_at <= ?1 - ?2)) \
    AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants) ORDER BY event_seq LIMIT ?3) \
    AND status = 'pending' AND (lease_until IS NULL OR lease_until < ?1) \
    AND (queued_at IS NULL OR (next_attempt_at <= ?1 - ?2 AND queued_at <= ?1 - ?2)) \
    RETURNING id, attempts, next_attempt_at";
/// Pending deliveries whose every allowed attempt was claimed but none could be recorded (the
/// store failed each time) end, rather than circle for ever.
pub const END_EXHAUSTED: &str = "UPDATE webhook_deliveries SET status = 'dead', lease_until = NULL, \
    last_error = 'every attempt was claimed but none could be recorded', updated_at = ?1 \
    WHERE status = 'pending' AND attempts - replay_base >= ?2 AND (lease_until IS NULL OR lease_until < ?1) \
    AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants)";
/// Takes a due delivery of an active endpoint for one attempt, until ?3, if the message is the
/// current one for it (?4: the attempts it had when queued) and attempts remain (?5: the most).
pub const CLAIM_DELIVERY: &str =
    "UPDATE webhook_deliveries SET lease_until = ?3, attempts = attempts + 1, updated_at = ?2 \
    WHERE id = ?1 AND status = 'pending' AND next_attempt_at <= ?2 + 1000 \
    AND (lease_until IS NULL OR lease_until < ?2) AND attempts = ?4 AND attempts - replay_base < ?5 \
    AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = endpoint_id AND w.status = 'active') \
    AND client_id NOT IN (SELECT tenant_id FROM fenced_tenants)";
pub const DELIVERY_STATE: &str =
    "SELECT status, attempts, next_attempt_at, lease_until FROM webhook_deliveries WHERE id = ?1";
pub const LOAD_DELIVERY: &str =
    "SELECT d.id, d.client_id, d.endpoint_id, d.attempts, d.replay_base, e.id AS event_id, \
    e.type AS event_type, e.data AS event_data, e.created_at AS event_at FROM webhook_deliveries d \
    JOIN events e ON e.id = d.event_id AND e.client_id = d.client_id WHERE d.id = ?1";
pub const INSERT_ATTEMPT: &str = "INSERT INTO webhook_attempts (id, client_id, delivery_id, attempt, at, status_code, \
    latency_ms, error, response_head) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
    ON CONFLICT (delivery_id, attempt) DO NOTHING";
/// The attempt's result, only while this consumer still holds the claim it took (?9 attempts,
/// ?10 its lease).
pub const SETTLE: &str = "UPDATE webhook_deliveries SET status = ?2, next_attempt_at = ?3, lease_until = NULL, \
    queued_at = ?4, last_status_code = ?5, last_error = ?6, updated_at = ?7 \
    WHERE id = ?1 AND client_id = ?8 AND status = 'pending' AND attempts = ?9 AND lease_until = ?10";
/// The endpoint's streak follows only an attempt that settled (the statement before it).
pub const ENDPOINT_SUCCEEDED: &str = "UPDATE webhook_endpoints SET consecutive_failures = 0, last_success_at = ?3 \
    WHERE client_id = ?1 AND id = ?2 AND changes() > 0";
pub const ENDPOINT_FAILED: &str = "UPDATE webhook_endpoints SET consecutive_failures = consecutive_failures + 1 \
    WHERE client_id = ?1 AND id = ?2 AND changes() > 0";
pub const DISABLE: &str = "UPDATE webhook_endpoints SET status = 'disabled', disabled_reason = ?3, updated_at = ?4 \
    WHERE client_id = ?1 AND id = ?2 AND status = 'active' AND consecutive_failures >= ?5";

/// Retention: the attempts and settled deliveries of events recorded before ?1, a bounded batch.
pub const PRUNE_ATTEMPTS: &str = "DELETE FROM webhook_attempts WHERE delivery_id IN (SELECT d.id FROM \
    webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE e.created_at < ?1 AND d.status <> 'pending' \
    AND d.client_id NOT IN (SELECT tenant_id FROM fenced_tenants) LIMIT ?2)";
pub const PRUNE_DELIVERIES: &str = "DELETE FROM webhook_deliveries WHERE id IN (SELECT d.id FROM \
    webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE e.created_at < ?1 AND d.status <> 'pending' \
    AND d.client_id NOT IN (SELECT tenant_id FROM fenced_tenants) LIMIT ?2)";
/// Then the old events no delivery still needs.
pub const PRUNE_EVENTS: &str = "DELETE FROM events WHERE seq IN (SELECT seq FROM events e WHERE e.created_at < ?1 \
    AND e.dispatched_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) \
    AND e.client_id NOT IN (SELECT tenant_id FROM fenced_tenants) LIMIT ?2)";

/// Newest first; ?3 the last event seq seen, ?5 an optional status.
pub const LIST: &str = "SELECT d.id, d.endpoint_id, d.event_id, e.type AS event_type, d.event_seq, d.status, \
    d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at \
    FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
    WHERE d.client_id = ?1 AND d.endpoint_id = ?2 AND (?3 IS NULL OR d.event_seq < ?3) AND (?5 IS NULL OR d.status = ?5) \
    ORDER BY d.event_seq DESC LIMIT ?4";
pub const SELECT_ONE: &str = "SELECT d.id, d.endpoint_id, d.event_id, e.type AS event_type, d.event_seq, d.status, \
    d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, d.created_at, d.updated_at \
    FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
    WHERE d.client_id = ?1 AND d.endpoint_id = ?2 AND d.id = ?3";
pub const ATTEMPTS: &str = "SELECT attempt, at, status_code, latency_ms, error, response_head FROM webhook_attempts \
    WHERE client_id = ?1 AND delivery_id = ?2 ORDER BY attempt";
/// A dead delivery goes again, with a fresh retry budget, if its endpoint is active.
pub const REPLAY_ONE: &str = "UPDATE webhook_deliveries SET status = 'pending', replay_base = attempts, \
    next_attempt_at = ?4, lease_until = NULL, queued_at = NULL, updated_at = ?4 \
    WHERE client_id = ?1 AND endpoint_id = ?2 AND id = ?3 AND status = 'dead' \
    AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.client_id = ?1 AND w.id = ?2 AND w.status = 'active')";
/// Every dead delivery of an endpoint (oldest first, bounded), optionally only of events since ?4.
pub const REPLAY_DEAD: &str = "UPDATE webhook_deliveries SET status = 'pending', replay_base = attempts, \
    next_attempt_at = ?3, lease_until = NULL, queued_at = NULL, updated_at = ?3 \
    WHERE id IN (SELECT d.id FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
      WHERE d.client_id = ?1 AND d.endpoint_id = ?2 AND d.status = 'dead' AND e.created_at >= ?4 \
      ORDER BY d.event_seq LIMIT ?5) \
    AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.client_id = ?1 AND w.id = ?2 AND w.status = 'active')";

/// What one drain did.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Drained {
    pub events: usize,
    pub queued: usize,
}

/// Fans recorded events out into deliveries and queues what is due or stranded: the cron's full
/// pass.
pub async fn drain<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Drained> {
    let max_attempts = ctx.cfg.webhooks.retry_schedule_secs.len() as i64 + 1;
    ctx.p.execute(END_EXHAUSTED, &[Param::Int(ctx.p.now_ms()), Param::Int(max_attempts)]).await?;
    let events = fan_out(ctx).await?;
    let queued = queue_due(ctx).await?;
    Ok(Drained { events, queued })
}

/// The drain after a request: fan out what it recorded and queue only if that made deliveries
/// (or the request made some due). Events of a client with no active endpoint are recorded
/// already dispatched, so a write costs its drain one query.
pub async fn drain_after_request<P: Platform>(
    ctx: &Ctx<'_, P>,
    outbox: Outbox,
    written: &[usize],
) -> ApiResult<Drained> {
    // The outboxes of the shards the request wrote (an event is written with the change it
    // announces): one query on a shard with nothing new. With one database, that one; if none
    // was noted, every shard.
    let shards: Vec<usize> = match ctx.p.shard_count() {
        0 | 1 => vec![0],
        n if written.is_empty() => (0..n).collect(),
        _ => written.to_vec(),
    };
    let mut out = Drained::default();
    for n in shards {
        ctx.p.scan_on(Some(n));
        let drained = drain_shard(ctx, outbox).await;
        ctx.p.scan_on(None);
        let d = drained?;
        out.events += d.events;
        out.queued += d.queued;
    }
    Ok(out)
}

async fn drain_shard<P: Platform>(ctx: &Ctx<'_, P>, outbox: Outbox) -> ApiResult<Drained> {
    let events = fan_out(ctx).await?;
    let queued = if events > 0 || outbox == Outbox::Deliveries { queue_due(ctx).await? } else { 0 };
    Ok(Drained { events, queued })
}

/// Undispatched events into deliveries, in bounded rounds. Returns the events fanned out.
async fn fan_out<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<usize> {
    let mut out = Drained::default();
    let now = ctx.p.now_ms();
    for _ in 0..DRAIN_ROUNDS {
        let rows = ctx.p.query(UNDISPATCHED_EVENTS, &[Param::Int(DRAIN_BATCH)]).await?;
        let seqs: Vec<String> = rows.iter().filter_map(|r| col_i64(r, "seq")).map(|s| s.to_string()).collect();
        if seqs.is_empty() {
            break;
        }
        // A JSON array of numbers, so json_each yields integers to compare with `seq`.
        let list = format!("[{}]", seqs.join(","));
        ctx.p
            .batch(&[
                Stmt::new(FAN_OUT, vec![list.as_str().into(), Param::Int(now)]),
                Stmt::new(MARK_DISPATCHED, vec![list.as_str().into(), Param::Int(now)]),
            ])
            .await?;
        out.events += seqs.len();
        if (seqs.len() as i64) < DRAIN_BATCH {
            break;
        }
    }
    Ok(out.events)
}

/// Queues pending deliveries never queued, or stranded. Returns how many.
async fn queue_due<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<usize> {
    let now = ctx.p.now_ms();
    let grace_ms = ctx.cfg.webhooks.requeue_after_secs * 1000;
    let due =
        ctx.p.query(DELIVERIES_TO_QUEUE, &[Param::Int(now), Param::Int(grace_ms), Param::Int(QUEUE_BATCH)]).await?;
    let messages: Vec<QueueMessage> = due
        .iter()
        .filter_map(|r| {
            let (id, attempts, at) = (col_str(r, "id")?, col_i64(r, "attempts")?, col_i64(r, "next_attempt_at")?);
            Some(QueueMessage { body: message_body(&id, attempts), delay_secs: delay_until(now, at) })
        })
        .collect();
    if messages.is_empty() {
        return Ok(0);
    }
    // Already marked queued; if this send fails they wait for the cron's re-queue.
    ctx.p.enqueue(&messages).await?;
    Ok(messages.len())
}

/// Deletes events older than `EVENT_RETENTION_DAYS` with their settled deliveries and attempts,
/// in bounded batches (the cron calls this every run). Pending deliveries keep their events.
pub async fn prune<P: Platform>(ctx: &Ctx<'_, P>) -> ApiResult<Value> {
    let cutoff = ctx.p.now_ms() - ctx.cfg.webhooks.retention_days * 86_400_000;
    let params = [Param::Int(cutoff), Param::Int(PRUNE_BATCH)];
    let attempts = ctx.p.execute(PRUNE_ATTEMPTS, &params).await?;
    let deliveries = ctx.p.execute(PRUNE_DELIVERIES, &params).await?;
    let events = ctx.p.execute(PRUNE_EVENTS, &params).await?;
    Ok(json!({"events": events, "deliveries": deliveries, "attempts": attempts}))
}

/// A queue message names a delivery and the attempts it had when queued, so a stale duplicate
/// (its attempt already made) is recognised and dropped.
pub fn message_body(delivery_id: &str, attempts: i64) -> String {
    format!("{delivery_id}.{attempts}")
}

fn parse_message(body: &str) -> Option<(&str, i64)> {
    let (id, attempts) = body.split_once('.')?;
    Some((id, attempts.parse().ok()?))
}

/// Seconds from now until `at`, as a queue delay.
fn delay_until(now_ms: i64, at_ms: i64) -> u32 {
    ((at_ms - now_ms).max(0) + 999).div_euclid(1000).min(MAX_DELAY_SECS) as u32
}

/// What the queue should do with a message after `deliver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// Done with (delivered, retried through a new message, or nothing to do).
    Done,
    /// The store failed: let the queue redeliver the message.
    Retry,
}

crate::platform::rows::row! {
    struct Loaded {
        id: String,
        client_id: String,
        endpoint_id: String,
        attempts: i64,
        replay_base: i64,
        event_id: String,
        event_type: String,
        event_data: String,
        event_at: i64,
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Succeeded,
    /// Worth another try, perhaps after the receiver's own `Retry-After` (seconds).
    Retry(Option<i64>),
    /// Not worth another try: a refused URL, a redirect, or a 4xx other than 408 and 429.
    Fail,
}

fn verdict(outcome: &PostOutcome) -> Verdict {
    match outcome {
        PostOutcome::Answered { status, retry_after, .. } => match status {
            200..=299 => Verdict::Succeeded,
            408 | 429 | 500..=599 => {
                Verdict::Retry(retry_after.as_deref().and_then(|s| s.trim().parse::<i64>().ok()).filter(|s| *s >= 0))
            }
            _ => Verdict::Fail,
        },
        PostOutcome::TimedOut | PostOutcome::Failed(_) => Verdict::Retry(None),
    }
}

/// The wait before retry number `n` (1-based), with ±10% jitter; None once the schedule is spent.
pub fn retry_delay_secs(schedule: &[u32], n: usize, retry_after: Option<i64>, jitter: u16) -> Option<i64> {
    let base = *schedule.get(n.checked_sub(1)?)? as i64;
    if let Some(after) = retry_after {
        return Some(after.clamp(1, MAX_DELAY_SECS));
    }
    // jitter is uniform in 0..=u16::MAX: map it onto -10%..+10% of the base.
    let spread = base * (jitter as i64 * 2 - u16::MAX as i64) / (10 * u16::MAX as i64);
    Some((base + spread).clamp(1, MAX_DELAY_SECS))
}

/// The queue consumer: one attempt at one delivery. `message` is what `message_body` made.
pub async fn deliver<P: Platform>(ctx: &Ctx<'_, P>, message: &str) -> Ack {
    let Some((id, attempts)) = parse_message(message).filter(|(id, _)| looks_like_id(id, "whd")) else {
        return Ack::Done;
    };
    match attempt(ctx, id, attempts).await {
        Ok(()) => Ack::Done,
        Err(e) => {
            // The store failed: the queue redelivers; a claim that was taken runs out with its
            // lease, the cron queues the delivery again, and `END_EXHAUSTED` bounds the circle.
            ctx.p.log("error", &format!("webhook delivery {id}: {e}"));
            Ack::Retry
        }
    }
}

/// How an attempt is settled: its outcome, latency, verdict, and whether it counts against the
/// endpoint (a refusal or failure of ours, such as a DNS resolver outage, does not).
struct Settlement {
    outcome: PostOutcome,
    latency_ms: i64,
    verdict: Verdict,
    strike: bool,
}

async fn attempt<P: Platform>(ctx: &Ctx<'_, P>, delivery_id: &str, queued_attempts: i64) -> ApiResult<()> {
    let cfg = &ctx.cfg.webhooks;
    let now = ctx.p.now_ms();
    let lease_until = now + cfg.timeout_ms as i64 * 2 + 5_000;
    let max_attempts = cfg.retry_schedule_secs.len() as i64 + 1;
    let params = [
        delivery_id.into(),
        Param::Int(now),
        Param::Int(lease_until),
        Param::Int(queued_attempts),
        Param::Int(max_attempts),
    ];
    if ctx.p.execute(CLAIM_DELIVERY, &params).await? == 0 {
        return requeue_if_early(ctx, delivery_id, queued_attempts, now).await;
    }
    let Some(row) = ctx.p.query(LOAD_DELIVERY, &[delivery_id.into()]).await?.into_iter().next() else { return Ok(()) };
    let d: Loaded = decode(row)?;
    // A system job: the delivery row names its client, and the endpoint is read within it.
    let e = ctx.p.query(super::SELECT_ONE, &[d.client_id.as_str().into(), d.endpoint_id.as_str().into()]).await?;
    let Some(e) = e.into_iter().next() else { return Ok(()) };
    let e: EndpointRow = decode(e)?;

    let failed =
        |msg: String, verdict, strike| Settlement { outcome: PostOutcome::Failed(msg), latency_ms: 0, verdict, strike };
    let settlement = match target::check(ctx, &e.url).await {
        // The name no longer resolves: the receiver's DNS, worth another try.
        Err(CheckError::Refused(Refusal::DoesNotResolve)) => {
            failed(format!("refused: {}", Refusal::DoesNotResolve.message()), Verdict::Retry(None), true)
        }
        Err(CheckError::Refused(r)) => failed(format!("refused: {}", r.message()), Verdict::Fail, true),
        Err(CheckError::Unavailable(err)) => {
            failed(format!("our DNS resolver failed: {err}"), Verdict::Retry(None), false)
        }
        Ok(t) => match signed_request(ctx, &e, &d) {
            Err(err) => failed(format!("not sent: {err}"), Verdict::Fail, false),
            Ok((body, headers)) => {
                let post = Post { url: t.url.as_str(), headers: &headers, body: &body, timeout_ms: cfg.timeout_ms };
                let (outcome, latency_ms) = ctx.p.post_json(&post).await;
                let verdict = verdict(&outcome);
                Settlement { outcome, latency_ms, verdict, strike: true }
            }
        },
    };
    settle(ctx, &d, &e, settlement, lease_until).await
}

/// A message that arrived before its delivery was due goes back on the queue for the rest; a
/// stale duplicate (the delivery has moved on) is dropped.
async fn requeue_if_early<P: Platform>(ctx: &Ctx<'_, P>, delivery_id: &str, attempts: i64, now: i64) -> ApiResult<()> {
    let Some(r) = ctx.p.query(DELIVERY_STATE, &[delivery_id.into()]).await?.into_iter().next() else { return Ok(()) };
    let current = col_str(&r, "status").as_deref() == Some("pending") && col_i64(&r, "attempts") == Some(attempts);
    let at = col_i64(&r, "next_attempt_at").unwrap_or(0);
    let leased = col_i64(&r, "lease_until").is_some_and(|l| l >= now);
    if current && !leased && at > now + 1000 {
        let message = QueueMessage { body: message_body(delivery_id, attempts), delay_secs: delay_until(now, at) };
        ctx.p.enqueue(&[message]).await?;
    }
    Ok(())
}

/// The event's body and its signed headers. Fails only if a signing secret cannot be opened
/// (sealed under a key no longer configured).
fn signed_request<P: Platform>(
    ctx: &Ctx<'_, P>,
    e: &EndpointRow,
    d: &Loaded,
) -> ApiResult<(String, Vec<(&'static str, String)>)> {
    let now = ctx.p.now_ms();
    let data: Value = serde_json::from_str(&d.event_data).unwrap_or(Value::Null);
    let body = json!({
        "id": d.event_id,
        "type": d.event_type,
        "timestamp": tz::instant_string(d.event_at),
        "client_id": d.client_id,
        "data": data,
    })
    .to_string();
    let secrets = signing_secrets(ctx.cfg, e, now)?;
    let secrets: Vec<&str> = secrets.iter().map(|s| s.expose()).collect();
    let ts = now.div_euclid(1000);
    let signature = signing::signature_header(&secrets, &d.event_id, ts, &body)?;
    let headers = vec![
        ("content-type", "application/json".to_string()),
        ("user-agent", format!("Gatehouse-Webhooks/{}", ctx.cfg.version)),
        ("webhook-id", d.event_id.clone()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", signature),
    ];
    Ok((body, headers))
}

/// Writes the attempt, the delivery's next state and the endpoint's streak in one batch, then
/// queues the retry.
async fn settle<P: Platform>(
    ctx: &Ctx<'_, P>,
    d: &Loaded,
    e: &EndpointRow,
    s: Settlement,
    lease_until: i64,
) -> ApiResult<()> {
    let cfg = &ctx.cfg.webhooks;
    let now = ctx.p.now_ms();
    let (code, error, head) = match &s.outcome {
        PostOutcome::Answered { status, head, .. } => {
            let error = (!(200..300).contains(status)).then(|| match status {
                300..=399 => format!("HTTP {status} (redirects are not followed)"),
                _ => format!("HTTP {status}"),
            });
            (Some(*status as i64), error, Some(head.chars().take(RESPONSE_HEAD_BYTES).collect::<String>()))
        }
        PostOutcome::TimedOut => (None, Some(format!("timed out after {} ms", cfg.timeout_ms)), None),
        PostOutcome::Failed(m) => (None, Some(m.chars().take(300).collect()), None),
    };
    let retry_n = (d.attempts - d.replay_base).max(1) as usize;
    let jitter = u16::from_le_bytes(crate::platform::ids::random_bytes::<2>()?);
    let (status, next_at) = match s.verdict {
        Verdict::Succeeded => ("succeeded", now),
        Verdict::Fail => ("dead", now),
        Verdict::Retry(after) => match retry_delay_secs(&cfg.retry_schedule_secs, retry_n, after, jitter) {
            Some(delay) => ("pending", now + delay * 1000),
            None => ("dead", now),
        },
    };
    let mut stmts = vec![
        Stmt::new(
            INSERT_ATTEMPT,
            vec![
                new_id("wha")?.into(),
                d.client_id.as_str().into(),
                d.id.as_str().into(),
                Param::Int(d.attempts),
                Param::Int(now),
                code.into(),
                Param::Int(s.latency_ms),
                error.clone().into(),
                head.into(),
            ],
        ),
        Stmt::new(
            SETTLE,
            vec![
                d.id.as_str().into(),
                status.into(),
                Param::Int(next_at),
                if status == "pending" { Param::Int(now) } else { Param::Null },
                code.into(),
                error.into(),
                Param::Int(now),
                d.client_id.as_str().into(),
                Param::Int(d.attempts),
                Param::Int(lease_until),
            ],
        ),
    ];
    let ids = || vec![d.client_id.as_str().into(), e.id.as_str().into()];
    if s.verdict == Verdict::Succeeded {
        let mut p = ids();
        p.push(Param::Int(now));
        stmts.push(Stmt::new(ENDPOINT_SUCCEEDED, p));
    } else if s.strike {
        stmts.push(Stmt::new(ENDPOINT_FAILED, ids()));
        let reason = format!("{} consecutive failed deliveries", cfg.disable_after_failures);
        let mut p = ids();
        p.extend([reason.as_str().into(), Param::Int(now), Param::Int(cfg.disable_after_failures)]);
        stmts.push(Stmt::new(DISABLE, p));
        stmts.push(audit::after_change(
            &system_actor(),
            Event {
                tenant_id: &d.client_id,
                action: "webhook.disabled",
                target_type: "webhook_endpoint",
                target_id: Some(&e.id),
                metadata: json!({"reason": reason, "url": e.url}),
            },
            now,
        )?);
        let mut p = ids();
        p.push(Param::Int(now));
        stmts.push(Stmt::new(END_PENDING, p));
    }
    let settled = ctx.p.batch(&stmts).await?.get(1).copied().unwrap_or(0) > 0;
    if settled && status == "pending" {
        let message = QueueMessage { body: message_body(&d.id, d.attempts), delay_secs: delay_until(now, next_at) };
        // If this send fails, the cron re-queues the delivery once it has been due a while.
        if let Err(err) = ctx.p.enqueue(&[message]).await {
            ctx.p.log("warn", &format!("webhook delivery {}: retry not queued: {err}", d.id));
        }
    }
    Ok(())
}

fn system_actor() -> Actor {
    Actor { user_id: None, role: Some("system".into()), ip: "queue".into(), user_agent: "webhooks".into() }
}

crate::platform::rows::row! {
    /// A delivery as the log shows it.
    #[derive(Debug, Serialize)]
    pub struct DeliveryView {
        pub id: String,
        pub endpoint_id: String,
        pub event_id: String,
        pub event_type: String,
        pub event_seq: i64,
        pub status: String,
        pub attempts: i64,
        pub next_attempt_at: i64,
        pub last_status_code: Option<i64>,
        pub last_error: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
    }
}

crate::platform::rows::row! {
    #[derive(Debug, Serialize)]
    struct AttemptView {
        attempt: i64,
        at: i64,
        status_code: Option<i64>,
        latency_ms: i64,
        error: Option<String>,
        response_head: Option<String>,
    }
}

/// The endpoint behind a log route, in a client the caller may manage webhooks of.
async fn scoped<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    endpoint_id: &str,
) -> ApiResult<(ClientScope, EndpointRow)> {
    let (client, _) = access::client(ctx, req, who, client_id, Permission::WebhooksManage).await?;
    let e = endpoint(ctx.p, &client, endpoint_id).await?.ok_or(ApiError::NotFound)?;
    Ok((client, e))
}

/// `GET /api/clients/{id}/webhooks/{endpoint_id}/deliveries?status=&cursor=&limit=`: newest first.
pub async fn list<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    endpoint_id: &str,
) -> ApiResult<Response> {
    let (client, e) = scoped(ctx, req, who, client_id, endpoint_id).await?;
    let (cursor, limit) = page_params(req)?;
    let status = match req.query_param("status") {
        None => Param::Null,
        Some(s) if matches!(s.as_str(), "pending" | "succeeded" | "dead") => s.into(),
        Some(_) => return Err(ApiError::bad_request("invalid_filter", "status is pending, succeeded or dead")),
    };
    let params = [client.id().into(), e.id.as_str().into(), seq_cursor(&cursor)?, Param::Int(limit), status];
    let items: Vec<DeliveryView> = ctx.p.query_as(LIST, &params).await?;
    Ok(page_response(&items, limit, |d| Some(d.event_seq.to_string())))
}

/// `GET /api/clients/{id}/webhooks/{endpoint_id}/deliveries/{delivery_id}`: with every attempt.
pub async fn get<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    endpoint_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, e) = scoped(ctx, req, who, client_id, endpoint_id).await?;
    if !looks_like_id(id, "whd") {
        return Err(ApiError::NotFound);
    }
    let row = ctx.p.query(SELECT_ONE, &[client.id().into(), e.id.as_str().into(), id.into()]).await?;
    let d: DeliveryView = decode(row.into_iter().next().ok_or(ApiError::NotFound)?)?;
    let attempts: Vec<AttemptView> = ctx.p.query_as(ATTEMPTS, &[client.id().into(), id.into()]).await?;
    let mut view = serde_json::to_value(&d).map_err(|e| ApiError::Internal(e.to_string()))?;
    view["attempt_log"] = serde_json::to_value(&attempts).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Response::json(200, &view))
}

/// `POST /api/clients/{id}/webhooks/{endpoint_id}/deliveries/{delivery_id}/replay`: a dead delivery
/// goes again (same event, same `webhook-id`), with a fresh retry budget.
pub async fn replay<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    endpoint_id: &str,
    id: &str,
) -> ApiResult<Response> {
    let (client, e) = scoped(ctx, req, who, client_id, endpoint_id).await?;
    if !looks_like_id(id, "whd") {
        return Err(ApiError::NotFound);
    }
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(REPLAY_ONE, vec![client.id().into(), e.id.as_str().into(), id.into(), Param::Int(now)]),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "webhook.replayed",
                target_type: "webhook_endpoint",
                target_id: Some(&e.id),
                metadata: json!({"delivery_id": id}),
            },
        )?,
    ];
    if !ctx.p.batch_changed(&stmts).await? {
        let row = ctx.p.query(SELECT_ONE, &[client.id().into(), e.id.as_str().into(), id.into()]).await?;
        let Some(row) = row.into_iter().next() else { return Err(ApiError::NotFound) };
        if e.status != "active" {
            return Err(ApiError::conflict("endpoint_disabled", "enable the endpoint before replaying its deliveries"));
        }
        let status = col_str(&row, "status").unwrap_or_default();
        return Err(ApiError::conflict(
            "not_replayable",
            format!("only dead deliveries are replayed; this one is {status}"),
        ));
    }
    ctx.deliveries_due();
    Ok(Response::json(202, &json!({"replayed": 1})))
}

crate::platform::body::body! {
    #[derive(Default)]
    struct BulkReplay {
        since: Option<String>,
    }
}

/// `POST /api/clients/{id}/webhooks/{endpoint_id}/replay {since?}`: every dead delivery (up to
/// 1000 per call, oldest first), or those of events since an RFC 3339 instant.
pub async fn replay_dead<P: Platform>(
    ctx: &Ctx<'_, P>,
    req: &Request,
    who: &Principal,
    client_id: &str,
    endpoint_id: &str,
) -> ApiResult<Response> {
    let (client, e) = scoped(ctx, req, who, client_id, endpoint_id).await?;
    let body: BulkReplay = if req.body.is_empty() { BulkReplay::default() } else { json_body(req, &[])? };
    let since = match body.since.as_deref() {
        None => 0,
        Some(s) => tz::parse_instant(s).ok_or_else(|| {
            ApiError::invalid("invalid_time", "`since` is an RFC 3339 instant like 2027-03-14T09:00:00Z")
        })?,
    };
    if e.status != "active" {
        return Err(ApiError::conflict("endpoint_disabled", "enable the endpoint before replaying its deliveries"));
    }
    let now = ctx.p.now_ms();
    let stmts = [
        Stmt::new(
            REPLAY_DEAD,
            vec![
                client.id().into(),
                e.id.as_str().into(),
                Param::Int(now),
                Param::Int(since),
                Param::Int(MAX_BULK_REPLAY),
            ],
        ),
        audit::entry_if_changed(
            ctx,
            req,
            who,
            Event {
                tenant_id: client.id(),
                action: "webhook.replayed",
                target_type: "webhook_endpoint",
                target_id: Some(&e.id),
                metadata: json!({"bulk": true, "since": body.since}),
            },
        )?,
    ];
    let replayed = ctx.p.batch(&stmts).await?.first().copied().unwrap_or(0);
    if replayed > 0 {
        ctx.deliveries_due();
    }
    Ok(Response::json(202, &json!({"replayed": replayed})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_within_ten_percent() {
        let schedule = [30, 120, 600];
        for jitter in [0u16, 1, 32_768, u16::MAX] {
            for (n, base) in [(1usize, 30i64), (2, 120), (3, 600)] {
                let d = retry_delay_secs(&schedule, n, None, jitter).expect("a retry");
                assert!((base * 9 / 10..=base * 11 / 10).contains(&d), "retry {n} jitter {jitter}: {d}");
            }
        }
        assert_eq!(retry_delay_secs(&schedule, 1, None, 0), Some(27));
        assert_eq!(retry_delay_secs(&schedule, 1, None, u16::MAX), Some(33));
        assert_eq!(retry_delay_secs(&schedule, 4, None, 0), None, "the schedule is spent");
        assert_eq!(retry_delay_secs(&schedule, 0, None, 0), None);
    }

    #[test]
    fn retry_after_wins_within_bounds() {
        assert_eq!(retry_delay_secs(&[30], 1, Some(120), 0), Some(120));
        assert_eq!(retry_delay_secs(&[30], 1, Some(0), 0), Some(1));
        assert_eq!(retry_delay_secs(&[30], 1, Some(10_000_000), 0), Some(MAX_DELAY_SECS));
        assert_eq!(retry_delay_secs(&[30], 2, Some(5), 0), None, "Retry-After does not extend the budget");
    }

    #[test]
    fn only_transient_answers_retry() {
        let answered = |status| PostOutcome::Answered { status, retry_after: None, head: String::new() };
        assert_eq!(verdict(&answered(200)), Verdict::Succeeded);
        assert_eq!(verdict(&answered(204)), Verdict::Succeeded);
        for s in [408, 429, 500, 502, 503, 504] {
            assert_eq!(verdict(&answered(s)), Verdict::Retry(None), "{s}");
        }
        for s in [301, 302, 400, 401, 403, 404, 410, 422] {
            assert_eq!(verdict(&answered(s)), Verdict::Fail, "{s}");
        }
        assert_eq!(verdict(&PostOutcome::TimedOut), Verdict::Retry(None));
        assert_eq!(verdict(&PostOutcome::Failed("refused".into())), Verdict::Retry(None));
        let limited = PostOutcome::Answered { status: 429, retry_after: Some(" 17 ".into()), head: String::new() };
        assert_eq!(verdict(&limited), Verdict::Retry(Some(17)));
    }

    #[test]
    fn delays_round_up_to_whole_seconds_and_cap_at_twelve_hours() {
        assert_eq!(delay_until(1000, 500), 0);
        assert_eq!(delay_until(1000, 1001), 1);
        assert_eq!(delay_until(0, 30_000), 30);
        assert_eq!(delay_until(0, 100 * 3_600_000), 43_200);
    }
}
