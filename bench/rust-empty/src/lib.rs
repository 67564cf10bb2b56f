//! Answers 200 at once: the per-request floor of a workers-rs Worker.
use worker::{event, Context, Env, Request, Response, Result};

#[event(fetch)]
async fn fetch(_req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    let mut resp = Response::from_bytes(b"{}".to_vec())?;
    resp.headers_mut().set("content-type", "application/json")?;
    Ok(resp)
}
