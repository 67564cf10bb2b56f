//! Statements to databases, below the handlers (ARCHITECTURE.md, "Scaling"). A `Router` holds
//! the control plane's database and the data shards' and is itself a `Database`: each statement
//! goes where its tables are (`planes::plane`), and a data-shard statement to the shard of the
//! tenant its tenant parameter names (`planes::tenant_param`), looked up in the directory
//! (`clients.shard`, `agencies.shard`) once per tenant. With no shards, the control plane's
//! database holds both planes, as one D1 did before.
//!
//! While an agency moves between shards (`tenants::moves`), its directory rows carry a fenced
//! shard (`fenced`): its tenants' rows are read where they are, and their writes are refused
//! with `StoreError::Moving` until the move flips the directory.
//!
//! What cannot be routed is refused, never guessed: a batch that would span two shards, and a
//! scan (a shard statement naming no tenant) in a batch with several shards and none chosen.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};

use super::error::StoreError;
use super::planes::{plane, tenant_param, writes, Plane};
use super::ports::{col_i64, col_str, json_list, Database, Param, Row, Stmt};

/// A tenant's shard: a client's or an agency's directory row. The platform's own rows (audit,
/// files under `platform`) live on the first shard.
pub const HOME: &str = "SELECT shard FROM clients WHERE id = ?1 UNION ALL SELECT shard FROM agencies WHERE id = ?1";

/// Holds the router just wrote in a control-plane batch, read back to apply them.
pub const HELD: &str = "SELECT id, tenant_id, writes FROM shard_writes WHERE id IN (SELECT value FROM json_each(?1))";
/// The same holds, applied.
pub const DROP_HELD: &str = "DELETE FROM shard_writes WHERE id IN (SELECT value FROM json_each(?1))";

/// What the layer above relays for the router (`access::relay::RELAY`). A control-plane batch may
/// carry statements on tables kept in both planes (a change's audit row); each the relay takes
/// becomes a hold of writes for its tenant's shard, in the same batch, and is applied to that
/// shard once the batch commits. Holds a failed request left are applied by the scheduled run.
/// A row written alone for a tenant whose agency is moving (a login's or a staff read's audit row)
/// is held the same way, and lands on the new shard after the flip.
pub trait Relay {
    /// The hold standing for the statement `sql` with `params` (its first two parameters the
    /// hold's id and tenant), or `None` to run it where it is.
    fn hold(&self, sql: &str, params: &[Param]) -> Option<Stmt>;
    /// The id of the hold `stmt` itself writes, when it is one the router should apply after
    /// the batch (with one database too).
    fn held_by(&self, stmt: &Stmt) -> Option<String>;
    /// The shard statements a stored hold stands for; `None` when it cannot be read.
    fn statements(&self, writes: &str) -> Option<Vec<Stmt>>;
}

/// The directory's `shard` for a tenant whose agency is moving off shard `n`: negative, so every
/// copy of a directory row (a cached gate's too) carries the fence with the shard.
pub const fn fenced(n: i64) -> i64 {
    -1 - n
}

/// A directory `shard` read back: the shard holding the rows, and whether writes are fenced.
pub const fn unfenced(shard: i64) -> (i64, bool) {
    if shard < 0 {
        (-1 - shard, true)
    } else {
        (shard, false)
    }
}

thread_local! {
    static ROUTES: RefCell<HashMap<String, Route>> = RefCell::new(HashMap::new());
}

#[derive(Debug, Clone, Copy)]
struct Route {
    plane: Plane,
    tenant: Option<usize>,
    writes: bool,
}

/// Where a tenant's rows are, as the directory said.
#[derive(Debug, Clone, Copy)]
struct Home {
    shard: usize,
    /// Its agency is moving: writes are refused.
    fenced: bool,
}

pub struct Router<D> {
    control: D,
    shards: Vec<D>,
    /// Tenant to shard, as the directory said.
    homes: RefCell<HashMap<String, Home>>,
    /// The shard a scan runs on, while a pass over the shards has one chosen.
    scan: Cell<Option<usize>>,
    /// The shards written through this router (a bit per shard, up to 64).
    written: Cell<u64>,
    relay: Option<&'static dyn Relay>,
}

/// Where one statement goes.
enum Target<'a, D> {
    One(&'a D),
    /// A scan with no shard chosen: every shard (a lookup by an id only one of them holds).
    Each,
}

impl<D: Database> Router<D> {
    /// `shards` empty: the control plane's database holds the data too.
    pub fn new(control: D, shards: Vec<D>) -> Self {
        Self { control, shards, homes: RefCell::default(), scan: Cell::new(None), written: Cell::new(0), relay: None }
    }

    /// Relays statements on tables kept in both planes out of control-plane batches.
    pub fn with_relay(mut self, relay: &'static dyn Relay) -> Self {
        self.relay = Some(relay);
        self
    }

    pub fn control(&self) -> &D {
        &self.control
    }

    pub fn shard(&self, n: usize) -> Option<&D> {
        self.shards.get(n)
    }

    /// Tells the router a tenant's shard, read with its directory row (saves the lookup).
    pub fn learn(&self, tenant: &str, shard: usize) {
        self.homes.borrow_mut().insert(tenant.to_string(), Home { shard, fenced: false });
    }

    /// Forgets what the directory said (after a tenant moved).
    pub fn forget(&self) {
        self.homes.borrow_mut().clear();
    }

    /// A statement's route, worked out once per isolate (the statements are the program's own,
    /// so the table stays small).
    fn route(&self, sql: &str) -> Route {
        ROUTES.with(|routes| {
            if let Some(r) = routes.borrow().get(sql) {
                return *r;
            }
            let r = Route { plane: plane(sql), tenant: tenant_param(sql), writes: writes(sql) };
            routes.borrow_mut().insert(sql.to_string(), r);
            r
        })
    }

    /// The tenant a routed statement names, if it names one.
    fn tenant_of<'p>(&self, sql: &str, params: &'p [Param]) -> Result<Option<&'p str>, StoreError> {
        let Some(n) = self.route(sql).tenant else { return Ok(None) };
        match n.checked_sub(1).and_then(|i| params.get(i)) {
            Some(Param::Text(t)) => Ok(Some(t)),
            _ => Err(StoreError::Unavailable(format!("parameter ?{n} names no tenant: {}", head(sql)))),
        }
    }

    /// A tenant's shard, if known without asking the directory.
    fn known_home(&self, tenant: &str) -> Option<Home> {
        if self.shards.len() <= 1 || tenant == "platform" {
            return Some(Home { shard: 0, fenced: false });
        }
        self.homes.borrow().get(tenant).copied()
    }

    /// A tenant's shard. The directory lookup is boxed: it is the cold path, and keeping its
    /// future out of every statement's keeps the request future small.
    async fn home(&self, tenant: &str) -> Result<Home, StoreError> {
        match self.known_home(tenant) {
            Some(h) => Ok(h),
            None => Box::pin(self.look_up(tenant)).await,
        }
    }

    async fn look_up(&self, tenant: &str) -> Result<Home, StoreError> {
        let rows = self.control.query(HOME, &[tenant.into()]).await?;
        // A tenant the directory does not know has no rows anywhere: the first shard answers as
        // well as any.
        let (h, fenced) = unfenced(rows.first().and_then(|r| col_i64(r, "shard")).unwrap_or(0));
        let shard = usize::try_from(h)
            .ok()
            .filter(|h| *h < self.shards.len())
            .ok_or_else(|| StoreError::Unavailable(format!("tenant {tenant} is on shard {h}, which is not bound")))?;
        let home = Home { shard, fenced };
        self.homes.borrow_mut().insert(tenant.to_string(), home);
        Ok(home)
    }

    /// `home`'s shard, refusing a write while its tenant's agency moves.
    fn open(&self, sql: &str, tenant: &str, home: Home) -> Result<usize, StoreError> {
        if home.fenced && self.route(sql).writes {
            return Err(StoreError::Moving(tenant.to_string()));
        }
        Ok(home.shard)
    }

    fn scan_target(&self) -> Target<'_, D> {
        match (self.scan.get(), self.shards.len()) {
            (Some(n), _) if n < self.shards.len() => Target::One(&self.shards[n]),
            (_, 1) => Target::One(&self.shards[0]),
            _ => Target::Each,
        }
    }

    /// Where one statement goes, or the tenant whose shard must first be looked up.
    fn target_now<'p>(&self, sql: &str, params: &'p [Param]) -> Result<Result<Target<'_, D>, &'p str>, StoreError> {
        if self.shards.is_empty() || self.route(sql).plane == Plane::Control {
            return Ok(Ok(Target::One(&self.control)));
        }
        match self.tenant_of(sql, params)? {
            Some(t) => match self.known_home(t) {
                Some(h) => Ok(Ok(Target::One(&self.shards[self.open(sql, t, h)?]))),
                None => Ok(Err(t)),
            },
            None => Ok(Ok(self.scan_target())),
        }
    }

    /// The shard of a tenant `target_now` could not place.
    async fn looked_up(&self, sql: &str, tenant: &str) -> Result<Target<'_, D>, StoreError> {
        let home = self.look_up(tenant).await?;
        Ok(Target::One(&self.shards[self.open(sql, tenant, home)?]))
    }

    async fn query_each(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        let mut out = Vec::new();
        for d in &self.shards {
            out.extend(d.query(sql, params).await?);
        }
        Ok(out)
    }

    async fn execute_each(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        let mut n = 0;
        for d in &self.shards {
            n += d.execute(sql, params).await?;
        }
        Ok(n)
    }

    /// Where a batch goes: the control plane if any statement is its (the rest, tables kept in
    /// both planes, go with it), else the one shard all its tenants are on.
    async fn batch_target(&self, stmts: &[Stmt]) -> Result<&D, StoreError> {
        if self.shards.is_empty() {
            return Ok(&self.control);
        }
        let planes: Vec<Plane> = stmts.iter().map(|s| self.route(s.sql).plane).collect();
        let control = planes.contains(&Plane::Control);
        if control && planes.contains(&Plane::Shard) {
            return Err(StoreError::Unavailable(format!("a batch joins the planes: {}", head(stmts[0].sql))));
        }
        if control {
            return Ok(&self.control);
        }
        let mut home = None;
        for s in stmts {
            let Some(t) = self.tenant_of(s.sql, &s.params)? else { continue };
            let h = self.open(s.sql, t, self.home(t).await?)?;
            if home.is_some_and(|o| o != h) {
                return Err(StoreError::Unavailable(format!("a batch spans shards: {}", head(s.sql))));
            }
            home = Some(h);
        }
        match (home, self.scan_target()) {
            (Some(h), _) => Ok(&self.shards[h]),
            (None, Target::One(d)) => Ok(d),
            (None, Target::Each) => Err(StoreError::Unavailable(format!(
                "a batch names no tenant and no shard is chosen: {}",
                head(stmts[0].sql)
            ))),
        }
    }
}

impl<D: Database> Router<D> {
    /// A control-plane batch, its relayable statements held for their tenants' shards (with
    /// several databases) and the holds applied once it commits.
    async fn control_batch(&self, stmts: &[Stmt]) -> Result<Vec<u64>, StoreError> {
        let Some(relay) = self.relay else { return self.control.batch(stmts).await };
        let relayable = |s: &Stmt| {
            relay.held_by(s).is_some() || (!self.shards.is_empty() && self.route(s.sql).plane == Plane::Either)
        };
        if !stmts.iter().any(relayable) {
            return self.control.batch(stmts).await;
        }
        let mut held = Vec::new();
        let mut unrelayable = None;
        let relayed: Vec<Stmt> = stmts
            .iter()
            .map(|s| {
                if let Some(id) = relay.held_by(s) {
                    held.push(id);
                    return s.clone();
                }
                let either = !self.shards.is_empty() && self.route(s.sql).plane == Plane::Either;
                match relay.hold(s.sql, &s.params).filter(|_| either) {
                    Some(h) => {
                        if let Some(Param::Text(id)) = h.params.first() {
                            held.push(id.clone());
                        }
                        h
                    }
                    // A statement on a table the shards hold, in a control-plane batch, that
                    // the relay does not carry would be written where nobody reads it.
                    None if either => {
                        unrelayable.get_or_insert(head(s.sql));
                        s.clone()
                    }
                    None => s.clone(),
                }
            })
            .collect();
        if let Some(sql) = unrelayable {
            return Err(StoreError::Unavailable(format!("a control-plane batch writes a shard's table: {sql}")));
        }
        if held.is_empty() {
            return self.control.batch(stmts).await;
        }
        let out = self.control.batch(&relayed).await?;
        // The change has committed with its holds: a failure to apply them now leaves them for
        // the scheduled run (`access::relay::apply_due`), and the change is not reported failed.
        let _ = self.apply_held(relay, &held).await;
        Ok(out)
    }

    /// Notes a write to `d` if it is a shard.
    fn wrote(&self, d: &D) {
        if let Some(i) = self.shards.iter().position(|s| std::ptr::eq(s, d)).filter(|i| *i < 64) {
            self.written.set(self.written.get() | (1 << i));
        }
    }

    /// The database holding shard `n`'s rows: the control plane's when there are no shards.
    fn data(&self, n: usize) -> &D {
        self.shards.get(n).unwrap_or(&self.control)
    }

    /// Applies holds to their tenants' shards, one batch per shard, then drops them. A hold
    /// whose change did not happen was never written, and is not found.
    async fn apply_held(&self, relay: &dyn Relay, ids: &[String]) -> Result<(), StoreError> {
        let list = json_list(ids);
        let rows = self.control.query(HELD, &[list.as_str().into()]).await?;
        let mut by_shard: BTreeMap<usize, Vec<Stmt>> = BTreeMap::new();
        let mut applied = Vec::new();
        for r in &rows {
            let (Some(id), Some(tenant), Some(writes)) =
                (col_str(r, "id"), col_str(r, "tenant_id"), col_str(r, "writes"))
            else {
                continue;
            };
            let stmts = relay
                .statements(&writes)
                .ok_or_else(|| StoreError::Decode(format!("a shard write for {tenant} is unreadable")))?;
            let home = self.home(&tenant).await?;
            // A moving tenant's holds wait for the scheduled run after the move.
            if home.fenced {
                continue;
            }
            applied.push(id);
            by_shard.entry(home.shard).or_default().extend(stmts);
        }
        for (h, stmts) in by_shard {
            self.wrote(self.data(h));
            self.data(h).batch(&stmts).await?;
        }
        if !applied.is_empty() {
            self.control.execute(DROP_HELD, &[json_list(&applied).into()]).await?;
        }
        Ok(())
    }
}

/// The start of a statement, for an error message (whole characters).
fn head(sql: &str) -> &str {
    sql.char_indices().nth(60).map_or(sql, |(i, _)| &sql[..i])
}

/// Where a statement goes: decided without waiting when it can be, else after the boxed lookup
/// (the statement futures stay the size of the inner database's).
macro_rules! target {
    ($router:expr, $sql:expr, $params:expr) => {
        match $router.target_now($sql, $params)? {
            Ok(t) => t,
            Err(tenant) => Box::pin($router.looked_up($sql, tenant)).await?,
        }
    };
}

impl<D: Database> Router<D> {
    async fn execute_routed(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        match target!(self, sql, params) {
            Target::One(d) => {
                self.wrote(d);
                d.execute(sql, params).await
            }
            Target::Each => Box::pin(self.execute_each(sql, params)).await,
        }
    }
}

impl<D: Database> Database for Router<D> {
    async fn query(&self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        match target!(self, sql, params) {
            Target::One(d) => d.query(sql, params).await,
            Target::Each => Box::pin(self.query_each(sql, params)).await,
        }
    }

    async fn query_text(&self, sql: &str, params: &[Param]) -> Result<Option<String>, StoreError> {
        match target!(self, sql, params) {
            Target::One(d) => d.query_text(sql, params).await,
            Target::Each => Err(StoreError::Unavailable("a statement answered as text names its tenant".into())),
        }
    }

    async fn execute(&self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        match self.execute_routed(sql, params).await {
            // A row written alone for a moving tenant that the relay carries is held in the
            // control plane, and lands on the tenant's new shard after the flip.
            Err(StoreError::Moving(t)) => match self.relay.and_then(|r| r.hold(sql, params)) {
                Some(h) => Box::pin(self.control.execute(h.sql, &h.params)).await,
                None => Err(StoreError::Moving(t)),
            },
            other => other,
        }
    }

    fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn scan_on(&self, n: Option<usize>) {
        self.scan.set(n);
    }

    fn shards_written(&self) -> Vec<usize> {
        (0..self.shards.len().min(64)).filter(|i| self.written.get() & (1 << i) != 0).collect()
    }

    fn learn_home(&self, tenant: &str, shard: i64) {
        let (shard, fenced) = unfenced(shard);
        if let Some(h) = usize::try_from(shard).ok().filter(|h| *h < self.shards.len()) {
            self.homes.borrow_mut().insert(tenant.to_string(), Home { shard: h, fenced });
        }
    }

    async fn batch(&self, stmts: &[Stmt]) -> Result<Vec<u64>, StoreError> {
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        if self.shards.is_empty() {
            return Box::pin(self.control_batch(stmts)).await;
        }
        let d = Box::pin(self.batch_target(stmts)).await?;
        if std::ptr::eq(d, &self.control) {
            return Box::pin(self.control_batch(stmts)).await;
        }
        self.wrote(d);
        d.batch(stmts).await
    }
}
