//! The soak: many keep-alive clients run the mixed workload (80% read, 10% create, 5% update,
//! 5% delete) against one server for a while, then every acknowledged write is checked.
//!
//! Each client owns the tasks it created (one writer per id), so it knows exactly what each of
//! them must hold: a read must return the client's last acknowledged content byte for byte,
//! and a client never reads an id it deleted. After the load, every live task is read back,
//! every deleted one must be 404, and the full listing must hold exactly the live tasks. Any
//! 5xx, unexpected status, wrong body or connection error is an error.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::http::Response;
use crate::keepalive::Connection;
use crate::server::{Db, Server};

/// Every stack: (stack name as printed at start-up, binary).
pub const STACKS: &[(&str, &str)] = &[
    ("axum-sqlx", "server-axum"),
    ("axum-diesel", "server-axum-diesel"),
    ("rocket-diesel", "server-rocket"),
    ("actix-sqlx", "server-actix"),
];

/// How hard and how long to push.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub duration: Duration,
    pub connections: usize,
    /// Per connect, read and write.
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(60),
            connections: 256,
            timeout: Duration::from_secs(30),
        }
    }
}

/// The kinds of request the load sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    List,
    Create,
    Update,
    Delete,
}

/// What one client (or, summed, one run) did and saw.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub reads: u64,
    pub lists: u64,
    pub creates: u64,
    pub updates: u64,
    pub deletes: u64,
    pub errors: u64,
    pub acked_creates: u64,
    pub acked_updates: u64,
    pub acked_deletes: u64,
    pub integrity_passed: u64,
    pub integrity_failed: u64,
    pub integrity_requests: u64,
    pub connects: u64,
    pub max_latency: Duration,
    /// The first few errors and integrity failures, one line each.
    pub samples: Vec<String>,
}

const MAX_SAMPLES: usize = 10;

impl Counts {
    pub const fn requests(&self) -> u64 {
        self.reads + self.lists + self.creates + self.updates + self.deletes
    }

    fn sample(&mut self, line: String) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(line);
        }
    }

    fn add(&mut self, other: &Self) {
        self.reads += other.reads;
        self.lists += other.lists;
        self.creates += other.creates;
        self.updates += other.updates;
        self.deletes += other.deletes;
        self.errors += other.errors;
        self.acked_creates += other.acked_creates;
        self.acked_updates += other.acked_updates;
        self.acked_deletes += other.acked_deletes;
        self.integrity_passed += other.integrity_passed;
        self.integrity_failed += other.integrity_failed;
        self.integrity_requests += other.integrity_requests;
        self.connects += other.connects;
        self.max_latency = self.max_latency.max(other.max_latency);
        for line in &other.samples {
            self.sample(line.clone());
        }
    }
}

/// The outcome of one soak of one stack on one database.
#[derive(Debug)]
pub struct Report {
    pub stack: String,
    pub db: Db,
    pub connections: usize,
    /// How long the load ran (not counting the integrity check).
    pub load: Duration,
    /// How long the integrity check took.
    pub check: Duration,
    pub counts: Counts,
    /// Problems outside the requests: the server's exit, its stderr.
    pub server_problems: Vec<String>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.counts.errors == 0
            && self.counts.integrity_failed == 0
            && self.counts.integrity_passed > 0
            && self.server_problems.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let secs = self.load.as_secs_f64();
        #[allow(clippy::cast_precision_loss, reason = "a rate for display")]
        let rate = if secs > 0.0 {
            c.requests() as f64 / secs
        } else {
            0.0
        };
        writeln!(
            f,
            "{} {} on {}: {:.1} s of load over {} connections ({} opened): {} requests ({rate:.0}/s, slowest {:.0} ms)",
            if self.passed() { "PASS" } else { "FAIL" },
            self.stack,
            self.db.name(),
            secs,
            self.connections,
            c.connects,
            c.requests(),
            c.max_latency.as_secs_f64() * 1000.0,
        )?;
        writeln!(
            f,
            "  by kind: read {}, list {}, create {}, update {}, delete {}",
            c.reads, c.lists, c.creates, c.updates, c.deletes
        )?;
        writeln!(f, "  errors: {}", c.errors)?;
        writeln!(
            f,
            "  acknowledged: {} creates, {} updates, {} deletes",
            c.acked_creates, c.acked_updates, c.acked_deletes
        )?;
        writeln!(
            f,
            "  integrity ({} requests, {:.1} s): {} passed, {} failed",
            c.integrity_requests,
            self.check.as_secs_f64(),
            c.integrity_passed,
            c.integrity_failed
        )?;
        for line in c.samples.iter().chain(&self.server_problems) {
            writeln!(f, "  ! {line}")?;
        }
        Ok(())
    }
}

/// Starts `binary` on a fresh `db`, soaks it, checks integrity, stops it, and reports.
pub fn run(stack: &str, binary: &str, db: Db, options: Options) -> Report {
    let server = Server::start(binary, db);
    let addr = server.addr();
    let mut report = soak(addr, options);
    report.stack = stack.to_owned();
    report.db = db;
    let stderr = server.stderr();
    let status = server.stop();
    if !status.success() {
        report
            .server_problems
            .push(format!("the server exited with {status} after SIGTERM"));
    }
    if !stderr.trim().is_empty() {
        let head: Vec<&str> = stderr.lines().take(5).collect();
        report
            .server_problems
            .push(format!("the server wrote to stderr: {}", head.join(" | ")));
    }
    report
}

/// Soaks the server at `addr` (whose database holds nothing but what this soak writes).
pub fn soak(addr: SocketAddr, options: Options) -> Report {
    let connections = options.connections.max(1);
    let barrier = Arc::new(Barrier::new(connections + 1));
    let started = Instant::now();
    let deadline = started + options.duration;
    let clients: Vec<_> = (0..connections)
        .map(|index| {
            let barrier = Arc::clone(&barrier);
            std::thread::Builder::new()
                .name(format!("soak-{index}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    let mut client = Client::new(index, addr, options.timeout);
                    client.load(deadline);
                    // Every client stops writing before anyone checks.
                    barrier.wait();
                    client.check();
                    client
                })
                .expect("a client thread starts")
        })
        .collect();
    barrier.wait();
    let load = started.elapsed();
    let check_started = Instant::now();
    let clients: Vec<Client> = clients
        .into_iter()
        .map(|c| c.join().expect("a client thread does not panic"))
        .collect();
    let mut counts = Counts::default();
    for client in &clients {
        counts.add(&client.counts);
    }
    check_listing(addr, options.timeout, &clients, &mut counts);
    Report {
        stack: String::new(),
        db: Db::Sqlite,
        connections,
        load,
        check: check_started.elapsed(),
        counts,
        server_problems: Vec::new(),
    }
}

/// The whole listing, page by page, must hold exactly the live tasks with their content.
fn check_listing(addr: SocketAddr, timeout: Duration, clients: &[Client], counts: &mut Counts) {
    let mut expected: HashMap<i64, &(String, bool)> = HashMap::new();
    let mut uncertain = HashSet::new();
    for client in clients {
        expected.extend(client.tasks.iter().map(|(id, task)| (*id, task)));
        uncertain.extend(client.uncertain.iter().copied());
    }
    let mut conn = Connection::new(addr, timeout);
    let mut listed = HashSet::new();
    let mut failures = Vec::new();
    // Bounded: one page per 1000 tasks, plus one.
    let pages = expected.len() as u64 / 1000 + uncertain.len() as u64 / 1000 + 2;
    for page in 0..pages {
        counts.integrity_requests += 1;
        let path = format!("/tasks?limit=1000&offset={}", page * 1000);
        let tasks: Vec<serde_json::Value> = match conn.send("GET", &path, None) {
            Ok(r) if r.status == 200 => match serde_json::from_slice(&r.body) {
                Ok(tasks) => tasks,
                Err(err) => {
                    failures.push(format!("GET {path}: not a JSON list: {err}"));
                    break;
                }
            },
            Ok(r) => {
                failures.push(format!("GET {path}: {} {}", r.status, r.text()));
                break;
            }
            Err(err) => {
                failures.push(format!("GET {path}: {err}"));
                break;
            }
        };
        if tasks.is_empty() {
            break;
        }
        for task in tasks {
            let id = task["id"].as_i64().unwrap_or_default();
            listed.insert(id);
            if uncertain.contains(&id) {
                continue;
            }
            match expected.get(&id) {
                Some((name, done)) if task["name"] == name.as_str() && task["done"] == *done => {}
                Some(_) => failures.push(format!(
                    "listed task {task} differs from its last acknowledged content"
                )),
                None => failures.push(format!(
                    "listed task {task} was deleted or never acknowledged"
                )),
            }
        }
    }
    let missing: Vec<i64> = expected
        .keys()
        .filter(|id| !listed.contains(id))
        .copied()
        .take(5)
        .collect();
    if !missing.is_empty() {
        failures.push(format!(
            "acknowledged tasks missing from the listing, e.g. {missing:?}"
        ));
    }
    if failures.is_empty() {
        counts.integrity_passed += 1;
    } else {
        counts.integrity_failed += 1;
        for failure in failures.into_iter().take(MAX_SAMPLES) {
            counts.sample(format!("listing: {failure}"));
        }
    }
}

fn task_json(id: i64, name: &str, done: bool) -> String {
    format!(
        r#"{{"id":{id},"name":{},"done":{done}}}"#,
        serde_json::to_string(name).expect("strings serialise")
    )
}

/// One connection and the tasks it alone writes.
struct Client {
    index: usize,
    conn: Connection,
    rng: u64,
    seq: u64,
    /// Live ids, for picking one at random.
    live: Vec<i64>,
    /// The last acknowledged content of every live id.
    tasks: HashMap<i64, (String, bool)>,
    /// Ids whose delete was acknowledged.
    deleted: Vec<i64>,
    /// Ids whose last write got no answer: their state is unknown and not checked.
    uncertain: HashSet<i64>,
    counts: Counts,
}

impl Client {
    fn new(index: usize, addr: SocketAddr, timeout: Duration) -> Self {
        let seed = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Self {
            index,
            conn: Connection::new(addr, timeout),
            rng: seed,
            seq: 0,
            live: Vec::new(),
            tasks: HashMap::new(),
            deleted: Vec::new(),
            uncertain: HashSet::new(),
            counts: Counts::default(),
        }
    }

    /// xorshift64*: plenty for choosing operations.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("below n")
    }

    fn name(&mut self) -> String {
        self.seq += 1;
        match self.seq % 4 {
            0 => format!("soak {} #{} ünïcödé 漢字 🚀", self.index, self.seq),
            1 => format!("  soak {} #{} \"quoted\" \\ ", self.index, self.seq),
            _ => format!("soak {} #{}", self.index, self.seq),
        }
    }

    fn load(&mut self, deadline: Instant) {
        while Instant::now() < deadline {
            let kind = match self.next() % 100 {
                0..80 if self.next().is_multiple_of(8) => Kind::List,
                0..80 => Kind::Read,
                80..90 => Kind::Create,
                90..95 => Kind::Update,
                _ => Kind::Delete,
            };
            let kind = if self.live.is_empty()
                && matches!(kind, Kind::Read | Kind::Update | Kind::Delete)
            {
                Kind::Create
            } else {
                kind
            };
            match kind {
                Kind::Read => self.read(),
                Kind::List => self.list(),
                Kind::Create => self.create(),
                Kind::Update => self.update(),
                Kind::Delete => self.delete(),
            }
        }
        self.counts.connects = self.conn.connects;
    }

    /// Sends a request, timing it; an I/O failure is an error (returned as `None`).
    fn send(&mut self, method: &str, path: &str, body: Option<&str>) -> Option<Response> {
        let started = Instant::now();
        let result = self.conn.send(method, path, body.map(str::as_bytes));
        self.counts.max_latency = self.counts.max_latency.max(started.elapsed());
        match result {
            Ok(response) => Some(response),
            Err(err) => {
                self.error(format!("{method} {path}: {err}"));
                None
            }
        }
    }

    fn error(&mut self, line: String) {
        self.counts.errors += 1;
        self.counts.sample(format!("client {}: {line}", self.index));
    }

    fn unexpected(&mut self, method: &str, path: &str, expected: &str, response: &Response) {
        self.error(format!(
            "{method} {path}: expected {expected}, got {} {}",
            response.status,
            response.text()
        ));
    }

    fn pick(&mut self) -> (usize, i64) {
        let slot = self.below(self.live.len());
        (slot, self.live[slot])
    }

    fn read(&mut self) {
        self.counts.reads += 1;
        let (_, id) = self.pick();
        let path = format!("/tasks/{id}");
        let Some(response) = self.send("GET", &path, None) else {
            return;
        };
        let (name, done) = &self.tasks[&id];
        let expected = task_json(id, name, *done);
        if response.status != 200 || response.body != expected.as_bytes() {
            self.unexpected("GET", &path, &format!("200 {expected}"), &response);
        }
    }

    fn list(&mut self) {
        self.counts.lists += 1;
        let path = format!("/tasks?limit=20&offset={}", self.below(2000));
        let Some(response) = self.send("GET", &path, None) else {
            return;
        };
        let is_list = serde_json::from_slice::<Vec<serde_json::Value>>(&response.body)
            .is_ok_and(|l| l.len() <= 20);
        if response.status != 200 || !is_list {
            self.unexpected(
                "GET",
                &path,
                "200 and a list of at most 20 tasks",
                &response,
            );
        }
    }

    fn create(&mut self) {
        self.counts.creates += 1;
        let name = self.name();
        let done = self.next().is_multiple_of(2);
        let body = serde_json::json!({ "name": name, "done": done }).to_string();
        let Some(response) = self.send("POST", "/tasks", Some(&body)) else {
            return;
        };
        let id = response
            .header("location")
            .and_then(|l| l.strip_prefix("/tasks/"))
            .and_then(|id| id.parse::<i64>().ok());
        match id {
            Some(id)
                if response.status == 201
                    && response.body == task_json(id, &name, done).as_bytes() =>
            {
                self.counts.acked_creates += 1;
                self.live.push(id);
                self.tasks.insert(id, (name, done));
            }
            _ => self.unexpected(
                "POST",
                "/tasks",
                "201 with location and the task",
                &response,
            ),
        }
    }

    fn update(&mut self) {
        self.counts.updates += 1;
        let (slot, id) = self.pick();
        let name = self.name();
        let done = self.next().is_multiple_of(2);
        let body = serde_json::json!({ "name": name, "done": done }).to_string();
        let path = format!("/tasks/{id}");
        let Some(response) = self.send("PUT", &path, Some(&body)) else {
            self.forget(slot, id);
            return;
        };
        let expected = task_json(id, &name, done);
        if response.status == 200 && response.body == expected.as_bytes() {
            self.counts.acked_updates += 1;
            self.tasks.insert(id, (name, done));
        } else {
            self.unexpected("PUT", &path, &format!("200 {expected}"), &response);
            self.forget(slot, id);
        }
    }

    fn delete(&mut self) {
        self.counts.deletes += 1;
        let (slot, id) = self.pick();
        let path = format!("/tasks/{id}");
        let Some(response) = self.send("DELETE", &path, None) else {
            self.forget(slot, id);
            return;
        };
        if response.status == 204 && response.body.is_empty() {
            self.counts.acked_deletes += 1;
            self.live.swap_remove(slot);
            self.tasks.remove(&id);
            self.deleted.push(id);
        } else {
            self.unexpected("DELETE", &path, "204", &response);
            self.forget(slot, id);
        }
    }

    /// A write whose outcome is unknown: the id is no longer checked (the error is counted).
    fn forget(&mut self, slot: usize, id: i64) {
        self.live.swap_remove(slot);
        self.tasks.remove(&id);
        self.uncertain.insert(id);
    }

    /// Reads back every id this client wrote: live ones hold their last acknowledged content,
    /// deleted ones are 404.
    fn check(&mut self) {
        let mut ids: Vec<i64> = self.live.clone();
        ids.sort_unstable();
        for id in ids {
            let expected = {
                let (name, done) = &self.tasks[&id];
                task_json(id, name, *done)
            };
            self.check_one(id, 200, Some(&expected));
        }
        for id in self.deleted.clone() {
            self.check_one(id, 404, None);
        }
        self.counts.connects = self.conn.connects;
    }

    fn check_one(&mut self, id: i64, status: u16, body: Option<&str>) {
        self.counts.integrity_requests += 1;
        let path = format!("/tasks/{id}");
        let outcome = match self.conn.send("GET", &path, None) {
            Ok(r) if r.status == status && body.is_none_or(|b| r.body == b.as_bytes()) => Ok(()),
            Ok(r) => Err(format!(
                "GET {path}: expected {status} {}, got {} {}",
                body.unwrap_or(""),
                r.status,
                r.text()
            )),
            Err(err) => Err(format!("GET {path}: {err}")),
        };
        match outcome {
            Ok(()) => self.counts.integrity_passed += 1,
            Err(why) => {
                self.counts.integrity_failed += 1;
                self.counts
                    .sample(format!("client {} integrity: {why}", self.index));
            }
        }
    }
}
