//! Workloads: which request each virtual client sends next, and what a correct answer looks
//! like. Requests are serialised into reusable buffers ([`harness::wire::write_request`]).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, bail};
use harness::rng::Rng;
use harness::wire::{self, write_request};
use serde::{Deserialize, Serialize};

use crate::soak::Ledger;

/// The named workloads of the benchmark method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadKind {
    Hello,
    Create,
    Read,
    Update,
    Delete,
    List,
    Mixed,
    Sleep,
    Fibonacci,
    /// The mix, with every client writing only tasks of its own, every answer checked byte
    /// for byte, and every acknowledged write checked after the load (see [`crate::soak`]).
    Soak,
    /// `GET` of one path (`loadgen run --url http://HOST:PORT/PATH`), any 2xx accepted: load
    /// for any server, as wrk gives it.
    Get,
}

impl WorkloadKind {
    pub const ALL: [Self; 11] = [
        Self::Hello,
        Self::Create,
        Self::Read,
        Self::Update,
        Self::Delete,
        Self::List,
        Self::Mixed,
        Self::Sleep,
        Self::Fibonacci,
        Self::Soak,
        Self::Get,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Hello => "hello",
            Self::Create => "create",
            Self::Read => "read",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Mixed => "mixed",
            Self::Sleep => "sleep",
            Self::Fibonacci => "fibonacci",
            Self::Soak => "soak",
            Self::Get => "get",
        }
    }

    /// The weights a mixing workload uses unless told otherwise.
    pub const fn default_mix(self) -> Mix {
        match self {
            Self::Soak => Mix {
                read: 70,
                create: 10,
                update: 5,
                delete: 5,
                list: 10,
            },
            _ => Mix::DEFAULT,
        }
    }

    /// Whether the workload draws its operations from a [`Mix`].
    pub const fn mixes(self) -> bool {
        matches!(self, Self::Mixed | Self::Soak)
    }

    /// Whether the workload reads or writes pre-seeded tasks (and so needs seeding).
    pub const fn needs_seed(self) -> bool {
        matches!(self, Self::Read | Self::Update | Self::List | Self::Mixed)
    }

    /// Whether the workload consumes ids from the delete pool.
    pub const fn needs_delete_pool(self) -> bool {
        matches!(self, Self::Delete | Self::Mixed)
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for WorkloadKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .with_context(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|w| w.name()).collect();
                format!(
                    "unknown workload {s:?} (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Weights of the `mixed` workload, in parts (they need not add up to 100).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    pub read: u32,
    pub create: u32,
    pub update: u32,
    pub delete: u32,
    pub list: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl Mix {
    /// The benchmark method's realistic mix: 80 % read, 10 % create, 5 % update, 5 % delete.
    pub const DEFAULT: Self = Self {
        read: 80,
        create: 10,
        update: 5,
        delete: 5,
        list: 0,
    };

    fn total(&self) -> u32 {
        self.read + self.create + self.update + self.delete + self.list
    }

    /// Picks an operation for a uniform draw `r` in `0..total`.
    pub fn pick(&self, mut r: u32) -> Op {
        for (w, op) in [
            (self.read, Op::Read),
            (self.create, Op::Create),
            (self.update, Op::Update),
            (self.delete, Op::Delete),
            (self.list, Op::List),
        ] {
            if r < w {
                return op;
            }
            r -= w;
        }
        Op::Read
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read={},create={},update={},delete={}",
            self.read, self.create, self.update, self.delete
        )?;
        if self.list > 0 {
            write!(f, ",list={}", self.list)?;
        }
        Ok(())
    }
}

impl FromStr for Mix {
    type Err = anyhow::Error;
    /// Parses `read=80,create=10,update=5,delete=5` (missing keys are 0).
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let mut mix = Self {
            read: 0,
            create: 0,
            update: 0,
            delete: 0,
            list: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .with_context(|| format!("mix entry {part:?} is not key=weight"))?;
            let value: u32 = value
                .trim()
                .parse()
                .with_context(|| format!("mix weight {value:?} is not a number"))?;
            match key.trim() {
                "read" => mix.read = value,
                "create" => mix.create = value,
                "update" => mix.update = value,
                "delete" => mix.delete = value,
                "list" => mix.list = value,
                other => bail!(
                    "unknown mix operation {other:?} (expected read, create, update, delete, list)"
                ),
            }
        }
        if mix.total() == 0 {
            bail!("mix weights add up to zero");
        }
        Ok(mix)
    }
}

/// A workload: its kind, the weights of a mixing one, and the path of `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub mix: Mix,
    /// What `get` requests (`/` unless given).
    pub path: String,
}

impl Workload {
    pub fn new(kind: WorkloadKind) -> Self {
        Self {
            kind,
            mix: kind.default_mix(),
            path: "/".to_owned(),
        }
    }
}

/// One kind of request: those that touch no database, the reads, the writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Hello,
    Sleep,
    Fibonacci,
    Get,
    Read,
    List,
    Create,
    Update,
    Delete,
}

impl Op {
    /// Whether `status` is the success this operation expects.
    pub const fn accepts(self, status: u16) -> bool {
        match self {
            Self::Create => status == 201,
            Self::Delete => status == 204,
            Self::Get => status >= 200 && status < 300,
            _ => status == 200,
        }
    }
}

/// How a response measured up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Status4xx,
    Status5xx,
    /// A status other than the expected one that is neither 4xx nor 5xx.
    StatusOther,
    /// The expected status with the wrong body.
    BodyMismatch,
}

impl Verdict {
    /// The class of an unexpected `status`.
    pub const fn of_status(status: u16) -> Self {
        match status {
            400..=499 => Self::Status4xx,
            500..=599 => Self::Status5xx,
            _ => Self::StatusOther,
        }
    }
}

/// The task ids created by seeding, shared by every virtual client.
///
/// `ids` serve reads, updates and lists; `delete_ids` is a disjoint, shuffled pool handed out
/// at most once each (so reads never hit a deleted task).
#[derive(Debug, Default)]
pub struct SeededIds {
    pub ids: Vec<i64>,
    pub delete_ids: Vec<i64>,
    next_delete: AtomicUsize,
    exhausted: AtomicBool,
}

impl SeededIds {
    pub fn new(ids: Vec<i64>, mut delete_ids: Vec<i64>) -> Self {
        Rng::new(0x05ee_d1d5).shuffle(&mut delete_ids);
        Self {
            ids,
            delete_ids,
            next_delete: AtomicUsize::new(0),
            exhausted: AtomicBool::new(false),
        }
    }

    /// The next never-used delete id, or `None` once the pool is spent.
    fn take_delete(&self) -> Option<i64> {
        let i = self.next_delete.fetch_add(1, Ordering::Relaxed);
        let id = self.delete_ids.get(i).copied();
        if id.is_none() {
            self.exhausted.store(true, Ordering::Relaxed);
        }
        id
    }

    /// Whether some client asked for a delete id after the pool ran out.
    pub fn exhausted(&self) -> bool {
        self.exhausted.load(Ordering::Relaxed)
    }

    /// How many delete ids were handed out.
    pub fn deletes_used(&self) -> usize {
        self.next_delete
            .load(Ordering::Relaxed)
            .min(self.delete_ids.len())
    }
}

/// A request ready to send and what its answer must look like.
#[derive(Debug)]
pub struct Planned<'a> {
    pub op: Op,
    /// The whole HTTP/1.1 request, serialised (borrowed from the generator until the next one).
    pub request: &'a [u8],
    /// The task id the answer must carry (read/update).
    pub expect_id: Option<i64>,
}

/// Generates requests for one virtual client, serialised into reusable buffers, and judges
/// their responses.
#[derive(Debug)]
pub struct RequestGen {
    workload: Workload,
    ids: Arc<SeededIds>,
    rng: Rng,
    host: String,
    counter: u64,
    client: u64,
    clients: u64,
    /// Requests that never change, serialised once.
    hello: Vec<u8>,
    sleep: Vec<u8>,
    fibonacci: Vec<u8>,
    get: Vec<u8>,
    /// The current varying request, and scratch space for its path and body.
    scratch: Vec<u8>,
    path: String,
    body: Vec<u8>,
    /// `soak`: what this client has written and must find again.
    ledger: Option<Box<Ledger>>,
}

impl RequestGen {
    /// `client` is this generator's index among `clients`; it seeds the RNG and makes task names unique.
    pub fn new(
        workload: Workload,
        ids: Arc<SeededIds>,
        host: &str,
        client: u64,
        clients: u64,
    ) -> anyhow::Result<Self> {
        if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            bail!("host {host:?} is not a valid header value");
        }
        if !workload.path.starts_with('/')
            || workload
                .path
                .bytes()
                .any(|b| b.is_ascii_control() || b == b' ')
        {
            bail!("path {:?} is not a valid request target", workload.path);
        }
        let fixed = |path: &str| {
            let mut out = Vec::new();
            write_request(&mut out, "GET", path, host, None);
            out
        };
        let ledger = (workload.kind == WorkloadKind::Soak).then(|| Box::new(Ledger::new(client)));
        Ok(Self {
            rng: Rng::new(0x1234_5678 ^ client.wrapping_mul(0x9e37_79b9)),
            host: host.to_owned(),
            counter: 0,
            client,
            clients: clients.max(1),
            hello: fixed("/"),
            sleep: fixed("/sleep?ms=2"),
            fibonacci: fixed("/fibonacci"),
            get: fixed(&workload.path),
            scratch: Vec::with_capacity(256),
            path: String::with_capacity(64),
            body: Vec::with_capacity(64),
            ledger,
            workload,
            ids,
        })
    }

    fn op(&mut self) -> Op {
        match self.workload.kind {
            WorkloadKind::Hello => Op::Hello,
            WorkloadKind::Create => Op::Create,
            WorkloadKind::Read => Op::Read,
            WorkloadKind::Update => Op::Update,
            WorkloadKind::Delete => Op::Delete,
            WorkloadKind::List => Op::List,
            WorkloadKind::Sleep => Op::Sleep,
            WorkloadKind::Fibonacci => Op::Fibonacci,
            WorkloadKind::Get => Op::Get,
            WorkloadKind::Mixed | WorkloadKind::Soak => {
                let total = self.workload.mix.total();
                let r = u32::try_from(self.rng.below(u64::from(total))).expect("below a u32");
                self.workload.mix.pick(r)
            }
        }
    }

    fn random_id(&mut self) -> Option<i64> {
        let ids = &self.ids.ids;
        if ids.is_empty() {
            return None;
        }
        Some(ids[self.rng.index(ids.len())])
    }

    /// Serialises a request with a varying path (and body) into `scratch`.
    fn build(&mut self, method: &str, body: bool) -> &[u8] {
        let body = body.then_some(self.body.as_slice());
        write_request(&mut self.scratch, method, &self.path, &self.host, body);
        &self.scratch
    }

    fn set_path(&mut self, args: std::fmt::Arguments<'_>) {
        use std::fmt::Write as _;
        self.path.clear();
        self.path
            .write_fmt(args)
            .expect("writing to a String cannot fail");
    }

    fn set_body(&mut self, args: std::fmt::Arguments<'_>) {
        use std::io::Write as _;
        self.body.clear();
        self.body
            .write_fmt(args)
            .expect("writing to a Vec cannot fail");
    }

    /// Path and body of a seeded-id workload's request; `None` when the ids have run out.
    fn plan_seeded(&mut self, op: Op) -> Option<Option<i64>> {
        self.counter += 1;
        let n = self.counter * self.clients + self.client;
        Some(match op {
            Op::Hello | Op::Sleep | Op::Fibonacci | Op::Get => None,
            Op::Create => {
                self.set_path(format_args!("/tasks"));
                self.set_body(format_args!("{{\"name\":\"task {n}\",\"done\":false}}"));
                None
            }
            Op::Read | Op::Update => {
                let id = self.random_id()?;
                self.set_path(format_args!("/tasks/{id}"));
                if op == Op::Update {
                    self.set_body(format_args!(
                        "{{\"name\":\"task {n} updated\",\"done\":true}}"
                    ));
                }
                Some(id)
            }
            Op::Delete => {
                let id = self.ids.take_delete()?;
                self.set_path(format_args!("/tasks/{id}"));
                Some(id)
            }
            Op::List => {
                // Offsets keep every page full (20 rows), so each list request does the same work.
                let seeded = self.ids.ids.len() as u64;
                let offset = self.rng.below(seeded.saturating_sub(20) + 1);
                self.set_path(format_args!("/tasks?limit=20&offset={offset}"));
                None
            }
        })
    }

    /// The next request, or `None` when the workload has run out of ids (delete pool spent,
    /// or nothing was seeded for a workload that needs seeded ids).
    pub fn next_request(&mut self) -> Option<Planned<'_>> {
        let drawn = self.op();
        let (op, expect_id) = match &mut self.ledger {
            Some(ledger) => {
                let op = ledger.plan(drawn, &mut self.rng, &mut self.path, &mut self.body);
                (op, None)
            }
            None => (drawn, self.plan_seeded(drawn)?),
        };
        let request: &[u8] = match op {
            Op::Hello => &self.hello,
            Op::Sleep => &self.sleep,
            Op::Fibonacci => &self.fibonacci,
            Op::Get => &self.get,
            Op::Create => self.build("POST", true),
            Op::Read | Op::List => self.build("GET", false),
            Op::Update => self.build("PUT", true),
            Op::Delete => self.build("DELETE", false),
        };
        Some(Planned {
            op,
            request,
            expect_id,
        })
    }

    /// Judges the response to the request planned last: its status and, when `sample` (or
    /// always, for `soak`), its body.
    pub fn check(
        &mut self,
        op: Op,
        expect_id: Option<i64>,
        response: &wire::Response<'_>,
        sample: bool,
    ) -> Verdict {
        if let Some(ledger) = &mut self.ledger {
            return ledger.check(response);
        }
        if !op.accepts(response.status) {
            Verdict::of_status(response.status)
        } else if sample && !body_ok(op, expect_id, response.body) {
            Verdict::BodyMismatch
        } else {
            Verdict::Ok
        }
    }

    /// The request planned last got no response (timeout, broken connection).
    pub fn lost(&mut self, why: &str) {
        if let Some(ledger) = &mut self.ledger {
            ledger.lost(why);
        }
    }

    /// What a `soak` client wrote, for the integrity check after the load.
    pub fn into_ledger(self) -> Option<Ledger> {
        self.ledger.map(|l| *l)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskShape {
    id: i64,
    #[allow(dead_code, reason = "only its presence and type are checked")]
    name: String,
    #[allow(dead_code, reason = "only its presence and type are checked")]
    done: bool,
}

fn task_ok(body: &[u8], expect_id: Option<i64>) -> bool {
    if !body.starts_with(b"{\"id\":") {
        return false;
    }
    match serde_json::from_slice::<TaskShape>(body) {
        Ok(task) => expect_id.is_none_or(|id| id == task.id),
        Err(_) => false,
    }
}

/// Whether `body` has the shape the contract promises for a successful `op`.
pub fn body_ok(op: Op, expect_id: Option<i64>, body: &[u8]) -> bool {
    match op {
        Op::Hello => body == b"Hello, World!",
        Op::Sleep => body == b"OK",
        Op::Delete => body.is_empty(),
        Op::Create | Op::Read | Op::Update => task_ok(body, expect_id),
        Op::List => match serde_json::from_slice::<Vec<TaskShape>>(body) {
            Ok(tasks) => tasks.len() <= 20 && tasks.windows(2).all(|w| w[0].id < w[1].id),
            Err(_) => false,
        },
        Op::Get => true,
        Op::Fibonacci => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Fib {
                count: u64,
                last: u64,
            }
            serde_json::from_slice::<Fib>(body).is_ok_and(|f| f.count == 39 && f.last == 63_245_986)
        }
    }
}

/// Parses the `id` of a created task from a 201 body.
pub fn created_id(body: &[u8]) -> Option<i64> {
    serde_json::from_slice::<TaskShape>(body).ok().map(|t| t.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_parses_and_prints() {
        let mix: Mix = "read=80,create=10,update=5,delete=5".parse().unwrap();
        assert_eq!(mix, Mix::default());
        assert_eq!(mix.to_string(), "read=80,create=10,update=5,delete=5");
        assert!("read=0".parse::<Mix>().is_err());
        assert!("write=3".parse::<Mix>().is_err());
        let only_list: Mix = "list=1".parse().unwrap();
        assert_eq!(only_list.pick(0), Op::List);
    }

    #[test]
    fn mix_picks_in_proportion() {
        let mix = Mix::default();
        let mut counts = [0u32; 4];
        for r in 0..100 {
            match mix.pick(r) {
                Op::Read => counts[0] += 1,
                Op::Create => counts[1] += 1,
                Op::Update => counts[2] += 1,
                Op::Delete => counts[3] += 1,
                _ => unreachable!(),
            }
        }
        assert_eq!(counts, [80, 10, 5, 5]);
    }

    #[test]
    fn bodies_are_checked() {
        let cases: &[(Op, Option<i64>, &str, bool)] = &[
            (Op::Hello, None, "Hello, World!", true),
            (Op::Hello, None, "Hello", false),
            (
                Op::Read,
                Some(7),
                r#"{"id":7,"name":"a","done":false}"#,
                true,
            ),
            (
                Op::Read,
                Some(8),
                r#"{"id":7,"name":"a","done":false}"#,
                false,
            ),
            (
                Op::Create,
                None,
                r#"{"name":"a","id":7,"done":false}"#,
                false,
            ),
            (Op::Create, None, r#"{"id":7,"name":"a"}"#, false),
            (
                Op::List,
                None,
                r#"[{"id":1,"name":"a","done":false},{"id":2,"name":"b","done":true}]"#,
                true,
            ),
            (
                Op::List,
                None,
                r#"[{"id":2,"name":"a","done":false},{"id":1,"name":"b","done":true}]"#,
                false,
            ),
            (Op::Delete, Some(1), "", true),
            (Op::Sleep, None, "OK", true),
            (Op::Fibonacci, None, r#"{"count":39,"last":63245986}"#, true),
            (
                Op::Fibonacci,
                None,
                r#"{"count":38,"last":63245986}"#,
                false,
            ),
        ];
        for &(op, id, body, expected) in cases {
            assert_eq!(body_ok(op, id, body.as_bytes()), expected, "{op:?} {body}");
        }
    }

    #[test]
    fn delete_ids_are_used_once() {
        let ids = Arc::new(SeededIds::new(vec![1], (10..20).collect()));
        let workload = Workload::new(WorkloadKind::Delete);
        let mut g = RequestGen::new(workload, ids.clone(), "h", 0, 1).unwrap();
        let mut seen = Vec::new();
        while let Some(p) = g.next_request() {
            seen.push(p.expect_id.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (10..20).collect::<Vec<_>>());
        assert!(ids.exhausted());
        assert_eq!(ids.deletes_used(), 10);
    }

    /// The request line, the headers (lower-cased names) and the body of a serialised request.
    fn split(req: &[u8]) -> (String, Vec<(String, String)>, String) {
        let text = std::str::from_utf8(req).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let first = lines.next().unwrap().to_owned();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap();
                (k.to_ascii_lowercase(), v.to_owned())
            })
            .collect();
        (first, headers, body.to_owned())
    }

    #[test]
    fn requests_have_the_contract_shape() {
        let ids = Arc::new(SeededIds::new((1..=100).collect(), Vec::new()));
        let mut g =
            RequestGen::new(Workload::new(WorkloadKind::List), ids.clone(), "h", 0, 1).unwrap();
        for _ in 0..100 {
            let p = g.next_request().unwrap();
            let (first, headers, body) = split(p.request);
            let q = first
                .strip_prefix("GET /tasks?limit=20&offset=")
                .unwrap()
                .strip_suffix(" HTTP/1.1")
                .unwrap();
            assert!(q.parse::<u64>().unwrap() <= 80);
            assert_eq!(headers, [("host".to_owned(), "h".to_owned())]);
            assert!(body.is_empty());
        }
        let mut g = RequestGen::new(
            Workload::new(WorkloadKind::Create),
            ids.clone(),
            "h:1",
            0,
            1,
        )
        .unwrap();
        let p = g.next_request().unwrap();
        let (first, headers, body) = split(p.request);
        assert_eq!(first, "POST /tasks HTTP/1.1");
        let len = body.len().to_string();
        assert_eq!(
            headers,
            [
                ("host".to_owned(), "h:1".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
                ("content-length".to_owned(), len),
            ]
        );
        assert_eq!(body, r#"{"name":"task 1","done":false}"#);
        let mut g =
            RequestGen::new(Workload::new(WorkloadKind::Update), ids.clone(), "h", 0, 1).unwrap();
        let p = g.next_request().unwrap();
        let id = p.expect_id.unwrap();
        let (first, _, body) = split(p.request);
        assert_eq!(first, format!("PUT /tasks/{id} HTTP/1.1"));
        assert_eq!(body, r#"{"name":"task 1 updated","done":true}"#);
        let mut g = RequestGen::new(Workload::new(WorkloadKind::Hello), ids, "h", 0, 1).unwrap();
        assert_eq!(
            g.next_request().unwrap().request,
            b"GET / HTTP/1.1\r\nhost: h\r\n\r\n"
        );
        assert!(
            RequestGen::new(
                Workload::new(WorkloadKind::Hello),
                Arc::default(),
                "a b",
                0,
                1
            )
            .is_err()
        );
    }
}
