//! The `soak` workload's integrity bookkeeping: each virtual client writes only tasks of its
//! own, so it knows exactly what each must hold. Every response is checked byte for byte
//! against that knowledge during the load ([`Ledger`]), and after it [`verify`] reads back
//! every acknowledged write: live tasks hold their last acknowledged content, deleted ones are
//! 404, and the full listing holds exactly the live tasks. A write that got no answer leaves
//! its task uncertain, and that task is not checked (the lost request is an error already).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use harness::rng::Rng;
use harness::wire::{self, Conn, write_request};
use serde::{Deserialize, Serialize};

use crate::engine::Target;
use crate::workload::{Op, Verdict, created_id};

/// How many problems a ledger (and the check) keeps as examples.
const MAX_SAMPLES: usize = 10;
/// Connections the after-load check reads back with.
const CHECK_CONNECTIONS: usize = 16;

/// What the integrity check found, recorded with the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Integrity {
    /// Writes the server acknowledged during the load.
    pub acked_creates: u64,
    pub acked_updates: u64,
    pub acked_deletes: u64,
    /// Checks after the load (one per task read back, plus the listing) that passed and failed.
    pub passed: u64,
    pub failed: u64,
    /// Requests the check made.
    pub requests: u64,
    /// Wrong or missing answers during the load, warm-up included.
    pub load_problems: u64,
    /// The first problems, during the load or after it, one line each.
    pub samples: Vec<String>,
}

impl Integrity {
    /// Every check passed, and there was something to check.
    pub const fn holds(&self) -> bool {
        self.failed == 0 && self.passed > 0 && self.load_problems == 0
    }

    fn sample(&mut self, line: String) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(line);
        }
    }
}

/// The request a client has in flight, and what it will change once acknowledged.
#[derive(Debug, Clone, Default)]
enum Pending {
    #[default]
    None,
    Read(i64),
    List,
    Create {
        name: String,
        done: bool,
    },
    Update {
        slot: usize,
        id: i64,
        name: String,
        done: bool,
    },
    Delete {
        slot: usize,
        id: i64,
    },
}

/// One client's tasks: what each live one holds, which were deleted, which are uncertain.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    client: u64,
    seq: u64,
    /// Live ids, for picking one at random.
    live: Vec<i64>,
    /// The last acknowledged content of every live id.
    tasks: HashMap<i64, (String, bool)>,
    /// Ids whose delete was acknowledged.
    deleted: Vec<i64>,
    /// Ids whose last write got no (or a wrong) answer.
    uncertain: HashSet<i64>,
    pending: Pending,
    /// Counts and the first problems seen during the load.
    found: Integrity,
}

/// A task as the contract writes it: `{"id":1,"name":"...","done":false}`.
pub fn task_json(id: i64, name: &str, done: bool) -> String {
    format!(
        r#"{{"id":{id},"name":{},"done":{done}}}"#,
        serde_json::to_string(name).expect("strings serialise")
    )
}

impl Ledger {
    pub fn new(client: u64) -> Self {
        Self {
            client,
            ..Self::default()
        }
    }

    /// A new name: some plain, some with quotes, backslashes, edge spaces and non-ASCII, which
    /// must all come back verbatim.
    fn name(&mut self) -> String {
        self.seq += 1;
        let (client, seq) = (self.client, self.seq);
        match seq % 4 {
            0 => format!("soak {client} #{seq} ünïcödé 漢字 🚀"),
            1 => format!("  soak {client} #{seq} \"quoted\" \\ "),
            _ => format!("soak {client} #{seq}"),
        }
    }

    /// Turns the operation `drawn` from the mix into this client's next request (a create
    /// while it has no task to read, update or delete), writes its path and body, and
    /// remembers it as pending. Returns the operation.
    pub fn plan(&mut self, drawn: Op, rng: &mut Rng, path: &mut String, body: &mut Vec<u8>) -> Op {
        let op = match drawn {
            Op::Create | Op::List => drawn,
            _ if self.live.is_empty() => Op::Create,
            Op::Update | Op::Delete => drawn,
            _ => Op::Read,
        };
        path.clear();
        body.clear();
        let slot = if self.live.is_empty() {
            0
        } else {
            rng.index(self.live.len())
        };
        self.pending = match op {
            Op::Read => {
                let id = self.live[slot];
                path.push_str(&format!("/tasks/{id}"));
                Pending::Read(id)
            }
            Op::List => {
                path.push_str(&format!("/tasks?limit=20&offset={}", rng.below(2000)));
                Pending::List
            }
            Op::Create | Op::Update => {
                let name = self.name();
                let done = rng.below(2) == 1;
                let json = serde_json::json!({ "name": name, "done": done }).to_string();
                body.extend_from_slice(json.as_bytes());
                if op == Op::Create {
                    path.push_str("/tasks");
                    Pending::Create { name, done }
                } else {
                    let id = self.live[slot];
                    path.push_str(&format!("/tasks/{id}"));
                    Pending::Update {
                        slot,
                        id,
                        name,
                        done,
                    }
                }
            }
            _ => {
                let id = self.live[slot];
                path.push_str(&format!("/tasks/{id}"));
                Pending::Delete { slot, id }
            }
        };
        op
    }

    fn problem(&mut self, line: String) {
        self.found.load_problems += 1;
        let client = self.client;
        self.found.sample(format!("client {client}: {line}"));
    }

    /// A write whose outcome is unknown: the id is no longer checked.
    fn forget(&mut self, slot: usize, id: i64) {
        self.live.swap_remove(slot);
        self.tasks.remove(&id);
        self.uncertain.insert(id);
    }

    /// Checks the response to the pending request byte for byte and records what it changed.
    pub fn check(&mut self, response: &wire::Response<'_>) -> Verdict {
        let (status, body) = (response.status, response.body);
        match std::mem::take(&mut self.pending) {
            Pending::None => Verdict::Ok,
            Pending::Read(id) => {
                let (name, done) = &self.tasks[&id];
                let expected = task_json(id, name, *done);
                self.judge(
                    status,
                    200,
                    body == expected.as_bytes(),
                    || format!("GET /tasks/{id}: expected 200 {expected}"),
                    body,
                )
            }
            Pending::List => {
                let is_page = serde_json::from_slice::<Vec<serde_json::Value>>(body)
                    .is_ok_and(|l| l.len() <= 20);
                self.judge(
                    status,
                    200,
                    is_page,
                    || "GET /tasks?limit=20: expected a list of at most 20 tasks".to_owned(),
                    body,
                )
            }
            Pending::Create { name, done } => {
                let id = created_id(body);
                let location = id.map(|id| format!("/tasks/{id}"));
                let located = response
                    .headers()
                    .iter()
                    .any(|(n, v)| n == "location" && Some(v) == location.as_ref());
                let exact = id.is_some_and(|id| body == task_json(id, &name, done).as_bytes());
                let verdict = self.judge(
                    status,
                    201,
                    located && exact,
                    || format!("POST /tasks: expected 201 with the location and the task {name:?}"),
                    body,
                );
                if let (Verdict::Ok, Some(id)) = (verdict, id) {
                    self.found.acked_creates += 1;
                    self.live.push(id);
                    self.tasks.insert(id, (name, done));
                }
                verdict
            }
            Pending::Update {
                slot,
                id,
                name,
                done,
            } => {
                let expected = task_json(id, &name, done);
                let verdict = self.judge(
                    status,
                    200,
                    body == expected.as_bytes(),
                    || format!("PUT /tasks/{id}: expected 200 {expected}"),
                    body,
                );
                if verdict == Verdict::Ok {
                    self.found.acked_updates += 1;
                    self.tasks.insert(id, (name, done));
                } else {
                    self.forget(slot, id);
                }
                verdict
            }
            Pending::Delete { slot, id } => {
                let verdict = self.judge(
                    status,
                    204,
                    body.is_empty(),
                    || format!("DELETE /tasks/{id}: expected 204"),
                    body,
                );
                if verdict == Verdict::Ok {
                    self.found.acked_deletes += 1;
                    self.live.swap_remove(slot);
                    self.tasks.remove(&id);
                    self.deleted.push(id);
                } else {
                    self.forget(slot, id);
                }
                verdict
            }
        }
    }

    /// The verdict for a response whose status should be `want` and whose body is right when
    /// `body_right`; a wrong one is kept as a sample.
    fn judge(
        &mut self,
        status: u16,
        want: u16,
        body_right: bool,
        expected: impl FnOnce() -> String,
        body: &[u8],
    ) -> Verdict {
        let verdict = if status != want {
            Verdict::of_status(status)
        } else if !body_right {
            Verdict::BodyMismatch
        } else {
            return Verdict::Ok;
        };
        self.problem(format!(
            "{}, got {status} {}",
            expected(),
            String::from_utf8_lossy(body)
        ));
        verdict
    }

    /// The pending request got no response: an update's or delete's task becomes uncertain.
    pub fn lost(&mut self, why: &str) {
        match std::mem::take(&mut self.pending) {
            Pending::Update { slot, id, .. } | Pending::Delete { slot, id } => {
                self.problem(format!("/tasks/{id}: {why}"));
                self.forget(slot, id);
            }
            Pending::Read(id) => self.problem(format!("GET /tasks/{id}: {why}")),
            Pending::Create { .. } => self.problem(format!("POST /tasks: {why}")),
            Pending::List | Pending::None => self.problem(format!("GET /tasks: {why}")),
        }
    }
}

/// One read-back after the load: `GET path` must answer `status` (and exactly `body`).
#[derive(Debug, Clone)]
struct ReadBack {
    path: String,
    status: u16,
    body: Option<String>,
}

/// Reads back every acknowledged write of `ledgers` from the server at `target`, then the whole
/// listing, and adds what it found to what the ledgers saw during the load.
pub async fn verify(target: &Target, ledgers: Vec<Ledger>, timeout: Duration) -> Integrity {
    let mut found = Integrity::default();
    let mut reads = Vec::new();
    let mut expected: HashMap<i64, (String, bool)> = HashMap::new();
    let mut uncertain = HashSet::new();
    for ledger in ledgers {
        let f = ledger.found;
        found.acked_creates += f.acked_creates;
        found.acked_updates += f.acked_updates;
        found.acked_deletes += f.acked_deletes;
        found.load_problems += f.load_problems;
        for line in f.samples {
            found.sample(line);
        }
        let mut live = ledger.live;
        live.sort_unstable();
        for id in live {
            let (name, done) = &ledger.tasks[&id];
            reads.push(ReadBack {
                path: format!("/tasks/{id}"),
                status: 200,
                body: Some(task_json(id, name, *done)),
            });
        }
        reads.extend(ledger.deleted.iter().map(|id| ReadBack {
            path: format!("/tasks/{id}"),
            status: 404,
            body: None,
        }));
        expected.extend(ledger.tasks);
        uncertain.extend(ledger.uncertain);
    }
    let per_connection = reads.len().div_ceil(CHECK_CONNECTIONS).max(1);
    let mut checkers = Vec::new();
    for share in reads.chunks(per_connection) {
        let (share, target) = (share.to_vec(), target.clone());
        checkers.push(tokio::spawn(async move {
            let mut client = CheckClient::new(target, timeout);
            let mut outcomes = Vec::with_capacity(share.len());
            for read in share {
                let outcome = client.get(&read.path).await.and_then(|(status, body)| {
                    let right = status == read.status
                        && read.body.as_ref().is_none_or(|b| body == b.as_bytes());
                    right.then_some(()).ok_or_else(|| {
                        format!(
                            "GET {}: expected {} {}, got {status} {}",
                            read.path,
                            read.status,
                            read.body.as_deref().unwrap_or(""),
                            String::from_utf8_lossy(&body)
                        )
                    })
                });
                outcomes.push(outcome);
            }
            outcomes
        }));
    }
    for checker in checkers {
        match checker.await {
            Ok(outcomes) => {
                for outcome in outcomes {
                    found.requests += 1;
                    match outcome {
                        Ok(()) => found.passed += 1,
                        Err(why) => {
                            found.failed += 1;
                            found.sample(format!("after the load: {why}"));
                        }
                    }
                }
            }
            Err(err) => {
                found.failed += 1;
                found.sample(format!("a checker failed: {err}"));
            }
        }
    }
    check_listing(target, timeout, &expected, &uncertain, &mut found).await;
    found
}

/// The whole listing, page by page, must hold exactly the live tasks with their content.
async fn check_listing(
    target: &Target,
    timeout: Duration,
    expected: &HashMap<i64, (String, bool)>,
    uncertain: &HashSet<i64>,
    found: &mut Integrity,
) {
    let mut client = CheckClient::new(target.clone(), timeout);
    let mut listed = HashSet::new();
    let mut failures = Vec::new();
    // Bounded: one page per 1000 tasks, plus one.
    let pages = (expected.len() + uncertain.len()) / 1000 + 2;
    for page in 0..pages {
        found.requests += 1;
        let path = format!("/tasks?limit=1000&offset={}", page * 1000);
        let tasks: Vec<serde_json::Value> = match client.get(&path).await {
            Ok((200, body)) => match serde_json::from_slice(&body) {
                Ok(tasks) => tasks,
                Err(err) => {
                    failures.push(format!("GET {path}: not a JSON list: {err}"));
                    break;
                }
            },
            Ok((status, body)) => {
                failures.push(format!(
                    "GET {path}: {status} {}",
                    String::from_utf8_lossy(&body)
                ));
                break;
            }
            Err(why) => {
                failures.push(why);
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
        found.passed += 1;
    } else {
        found.failed += 1;
        for failure in failures {
            found.sample(format!("listing: {failure}"));
        }
    }
}

/// A keep-alive connection for the read-back, reopened after a failure.
struct CheckClient {
    target: Target,
    timeout: Duration,
    conn: Option<Conn>,
    request: Vec<u8>,
}

impl CheckClient {
    const fn new(target: Target, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            conn: None,
            request: Vec::new(),
        }
    }

    async fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), String> {
        write_request(&mut self.request, "GET", path, &self.target.host, None);
        let exchange = async {
            if self.conn.is_none() {
                self.conn = Some(Conn::connect(self.target.addr).await?);
            }
            let conn = self.conn.as_mut().expect("connected above");
            let response = conn.send(&self.request).await?;
            Ok::<_, wire::ExchangeError>((
                response.status,
                response.body.to_vec(),
                response.keep_alive,
            ))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, body, keep_alive))) => {
                if !keep_alive {
                    self.conn = None;
                }
                Ok((status, body))
            }
            Ok(Err(err)) => {
                self.conn = None;
                Err(format!("GET {path}: {err}"))
            }
            Err(_) => {
                self.conn = None;
                Err(format!("GET {path}: no answer within {:?}", self.timeout))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response<'a>(status: u16, head: &'a [u8], body: &'a [u8]) -> wire::Response<'a> {
        wire::Response {
            status,
            head,
            body,
            keep_alive: true,
        }
    }

    #[test]
    fn a_client_tracks_what_it_wrote() {
        let (mut ledger, mut rng) = (Ledger::new(7), Rng::new(1));
        let (mut path, mut body) = (String::new(), Vec::new());
        // Nothing to read yet: a create.
        assert_eq!(
            ledger.plan(Op::Read, &mut rng, &mut path, &mut body),
            Op::Create
        );
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let (name, done) = (
            sent["name"].as_str().unwrap(),
            sent["done"].as_bool().unwrap(),
        );
        let created = task_json(5, name, done);
        let head = b"HTTP/1.1 201 Created\r\nlocation: /tasks/5\r\n\r\n";
        let verdict = ledger.check(&response(201, head, created.as_bytes()));
        assert_eq!(verdict, Verdict::Ok);
        // The read must return exactly that task.
        assert_eq!(
            ledger.plan(Op::Read, &mut rng, &mut path, &mut body),
            Op::Read
        );
        assert_eq!(path, "/tasks/5");
        let verdict = ledger.check(&response(200, b"", created.as_bytes()));
        assert_eq!(verdict, Verdict::Ok);
        ledger.plan(Op::Read, &mut rng, &mut path, &mut body);
        let other = task_json(5, "someone else's", done);
        let verdict = ledger.check(&response(200, b"", other.as_bytes()));
        assert_eq!(verdict, Verdict::BodyMismatch);
        // A delete that gets no answer leaves the task uncertain, no longer checked.
        assert_eq!(
            ledger.plan(Op::Delete, &mut rng, &mut path, &mut body),
            Op::Delete
        );
        ledger.lost("timed out");
        assert!(ledger.live.is_empty() && ledger.uncertain.contains(&5));
        assert_eq!(ledger.found.acked_creates, 1);
        assert_eq!(ledger.found.samples.len(), 2, "{:?}", ledger.found.samples);
    }

    #[test]
    fn a_create_without_its_location_is_wrong() {
        let (mut ledger, mut rng) = (Ledger::new(1), Rng::new(2));
        let (mut path, mut body) = (String::new(), Vec::new());
        ledger.plan(Op::Create, &mut rng, &mut path, &mut body);
        let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let created = task_json(
            9,
            sent["name"].as_str().unwrap(),
            sent["done"].as_bool().unwrap(),
        );
        let verdict = ledger.check(&response(
            201,
            b"HTTP/1.1 201 Created\r\n\r\n",
            created.as_bytes(),
        ));
        assert_eq!(verdict, Verdict::BodyMismatch);
        assert!(ledger.live.is_empty());
    }
}
