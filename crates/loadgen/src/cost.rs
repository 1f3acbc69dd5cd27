//! The noise-free cost column: CPU instructions per request, counted by valgrind's callgrind.
//!
//! Each stack runs under `valgrind --tool=callgrind` on a fresh SQLite database with one
//! worker. Per workload, one client sends `warmup` requests one after another (caches, pools
//! and prepared statements warm), callgrind's counters are zeroed (`callgrind_control
//! --zero`), exactly `requests` more are sent, each `settle` after the response before it, and
//! the counters are dumped (`callgrind_control --dump`). The dump's instruction total over
//! `requests` is the cost per request; its per-function self costs, grouped by the crate (or C
//! library) each function belongs to, split it into HTTP and framework, JSON, database,
//! runtime, allocator and the rest ([`Category`]). Requests are sequential and their sequence
//! is fixed by the workload's seeded generator, so the count does not depend on the machine's
//! speed. valgrind runs one thread of a process at a time, and which thread runs after a
//! hand-off (a query passed to the database thread, its answer passed back) is up to the
//! kernel: under its ordinary scheduling that race made counts of such stacks differ by up to
//! 7 % between processes, and move with the machine's load. So each server process runs on a
//! core of its own at real-time priority ([`Schedule::RunToBlock`]), where a thread runs on
//! until it blocks and the same requests interleave the threads alike in every process; the
//! pause before each counted request ([`settle_server`]) lets the server finish the last one
//! first. Hash seeds still differ per process, so every count is taken in `runs` fresh
//! processes, and the report gives their median and spread; every command is one
//! column ([`CostRecord::invocation`]), and the report compares two columns cell by cell.

use std::collections::BTreeMap;
use std::io::{BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use harness::DbKind;
use harness::server::{Server, ServerSpec};
use harness::wire::{self, Reader};
use serde::{Deserialize, Serialize};

use crate::workload::{RequestGen, SeededIds, Verdict, Workload, WorkloadKind, created_id};

/// Version of the [`CostRecord`] layout; readers refuse other versions.
pub const COST_SCHEMA_VERSION: u32 = 1;

/// The workloads the cost column counts, in the order they run on one server.
pub const WORKLOADS: [WorkloadKind; 7] = [
    WorkloadKind::Hello,
    WorkloadKind::Read,
    WorkloadKind::List,
    WorkloadKind::Update,
    WorkloadKind::Create,
    WorkloadKind::Mixed,
    WorkloadKind::Delete,
];

/// What one stack's code spends instructions on, by the crate a function belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// The web framework and the HTTP/1.1 layer under it (routing, parsing, headers, dates).
    Http,
    /// serde and serde_json: parsing request bodies, writing responses.
    Json,
    /// The database driver or ORM, its pool, and SQLite itself (or libpq).
    Database,
    /// The async runtime, synchronisation and instrumentation (tokio, futures, tracing).
    Runtime,
    /// This workspace's own code (`shared`, the servers).
    App,
    /// malloc and free.
    Allocator,
    /// Rust's standard library (collections, formatting, drop glue of std types).
    Std,
    /// The C library and the dynamic loader (memcpy, system call wrappers).
    Libc,
    /// Anything not recognised above.
    Other,
}

impl Category {
    pub const ALL: [Self; 9] = [
        Self::Http,
        Self::Json,
        Self::Database,
        Self::Runtime,
        Self::App,
        Self::Allocator,
        Self::Std,
        Self::Libc,
        Self::Other,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Json => "json",
            Self::Database => "database",
            Self::Runtime => "runtime",
            Self::App => "app",
            Self::Allocator => "allocator",
            Self::Std => "std",
            Self::Libc => "libc",
            Self::Other => "other",
        }
    }
}

/// The crates (by the first segment of a Rust path, names separated by white space) whose
/// code counts in each category.
/// A name ending in `*` matches every crate it starts (`actix_*`).
const CRATES: &[(Category, &str)] = &[
    (
        Category::Http,
        "hyper hyper_util http http_body http_body_util httparse httpdate h2 axum \
         axum_core tower* matchit actix* rocket* bytes bytestring mime percent_encoding \
         form_urlencoded serde_urlencoded url cookie time multer state ref_cast",
    ),
    (Category::Json, "serde_json serde serde_core ryu itoa"),
    (
        Category::Database,
        "sqlx* diesel* libsqlite3_sys rusqlite r2d2 deadpool* tokio_postgres postgres* \
         flume",
    ),
    (
        Category::Runtime,
        "tokio* mio futures* parking_lot* crossbeam* event_listener* async_* \
         pin_project* tracing* log signal_hook* concurrent_queue",
    ),
    (Category::App, "shared server_*"),
    (
        Category::Std,
        "std core alloc hashbrown smallvec memchr once_cell foldhash indexmap",
    ),
];

/// C functions (no Rust path) by name prefix, per category (separated by white space).
const C_FUNCTIONS: &[(Category, &str)] = &[
    (Category::Database, "sqlite3"),
    (
        Category::Allocator,
        "malloc free realloc calloc cfree _int_malloc _int_free _int_realloc \
         malloc_consolidate unlink_chunk tcache __libc_malloc __libc_free \
         __libc_realloc __libc_calloc __rust_alloc __rust_dealloc __rust_realloc __rdl_ \
         __rg_",
    ),
];

fn crate_category(name: &str) -> Option<Category> {
    let matches = |pattern: &str| match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    };
    CRATES
        .iter()
        .find(|(_, patterns)| patterns.split_whitespace().any(matches))
        .map(|&(category, _)| category)
}

/// The first segments of the Rust paths in a demangled symbol, in order: `<hyper::X as
/// tower::Service>::call` gives `hyper`, `tower`.
fn path_roots(symbol: &str) -> impl Iterator<Item = &str> {
    let bytes = symbol.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while at < bytes.len() {
            let start = at;
            if bytes[at].is_ascii_alphabetic() || bytes[at] == b'_' {
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                    at += 1;
                }
                let follows_path = bytes.get(at..at + 2) == Some(b"::".as_slice());
                let starts_path = start < 2 || &bytes[start - 2..start] != b"::";
                if follows_path && starts_path {
                    return Some(&symbol[start..at]);
                }
            } else {
                at += 1;
            }
        }
        None
    })
}

/// The category of a function, from its demangled name and the object file it is in.
///
/// A Rust function counts where the first crate it names that is not the standard library
/// belongs (`core::ptr::drop_in_place<hyper::..>` is HTTP), else as std; a C function by
/// its name, else by its object (the C library; SQLite, compiled into the server; or other).
pub fn classify(object: &str, function: &str) -> Category {
    let mut std = false;
    for root in path_roots(function) {
        match crate_category(root) {
            Some(Category::Std) => std = true,
            Some(category) => return category,
            None => {}
        }
    }
    if std {
        return Category::Std;
    }
    if let Some(&(category, _)) = C_FUNCTIONS
        .iter()
        .find(|(_, prefixes)| prefixes.split_whitespace().any(|p| function.starts_with(p)))
    {
        return category;
    }
    let file = object.rsplit('/').next().unwrap_or(object);
    let library = |names: &[&str]| names.iter().any(|lib| file.starts_with(lib));
    if library(&["libc.so", "ld-linux", "libm.so"]) {
        Category::Libc
    } else if library(&["libsqlite3.so", "libpq.so"]) || !file.contains(".so") {
        // C code linked into the server binary itself is SQLite's (libsqlite3-sys, bundled):
        // the only C library the stacks link statically (`walFindFrame`, `btreeNext`, ...).
        Category::Database
    } else {
        Category::Other
    }
}

/// One callgrind dump: the instruction total and each function's self cost.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `summary:` (or, without one, the sum of every cost line).
    pub total: u64,
    /// Self instructions per (object, function).
    pub functions: BTreeMap<(String, String), u64>,
}

impl Profile {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let file = std::fs::File::open(path)
            .with_context(|| format!("cannot open callgrind output {}", path.display()))?;
        Self::parse(BufReader::new(file))
            .with_context(|| format!("reading callgrind output {}", path.display()))
    }

    /// Parses callgrind's output format (with or without name compression), events `Ir` only.
    pub fn parse(input: impl std::io::BufRead) -> anyhow::Result<Self> {
        let mut objects: BTreeMap<String, String> = BTreeMap::new();
        let mut functions: BTreeMap<String, String> = BTreeMap::new();
        let mut object = String::new();
        let mut function: Option<String> = None;
        let mut profile = Self::default();
        let mut summary = None;
        let mut summed = 0u64;
        // The cost line after `calls=` is the call's inclusive cost, not the caller's own.
        let mut after_call = false;
        for line in input.lines() {
            let line = line?;
            if let Some(rest) = line.strip_prefix("summary:") {
                summary = Some(parse_count(rest.trim())?);
            } else if let Some(rest) = line.strip_prefix("events:") {
                if rest.split_whitespace().next() != Some("Ir") {
                    bail!("expected the Ir event first, found {rest:?}");
                }
            } else if let Some(rest) = line.strip_prefix("ob=") {
                object = compressed(&mut objects, rest);
            } else if let Some(rest) = line.strip_prefix("cob=") {
                compressed(&mut objects, rest);
            } else if let Some(rest) = line.strip_prefix("fn=") {
                function = Some(compressed(&mut functions, rest));
            } else if let Some(rest) = line.strip_prefix("cfn=") {
                compressed(&mut functions, rest);
            } else if line.starts_with("calls=") {
                after_call = true;
            } else if line
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit() || b == b'+' || b == b'-' || b == b'*')
            {
                let mut fields = line.split_whitespace();
                fields.next(); // the position
                let cost = fields.next().map_or(Ok(0), parse_count)?;
                if after_call {
                    after_call = false;
                    continue;
                }
                summed += cost;
                let name = function
                    .clone()
                    .context("a cost line before any fn= line")?;
                *profile.functions.entry((object.clone(), name)).or_default() += cost;
            }
        }
        profile.total = summary.unwrap_or(summed);
        Ok(profile)
    }

    /// Self instructions per category.
    pub fn split(&self) -> BTreeMap<Category, u64> {
        let mut split = BTreeMap::new();
        for ((object, function), &cost) in &self.functions {
            *split.entry(classify(object, function)).or_default() += cost;
        }
        split
    }
}

fn parse_count(text: &str) -> anyhow::Result<u64> {
    text.parse()
        .with_context(|| format!("bad count {text:?} in callgrind output"))
}

/// Resolves `(id) name` (defines id) or `(id)` (refers to it) or a bare name.
fn compressed(names: &mut BTreeMap<String, String>, text: &str) -> String {
    let text = text.trim();
    let Some(rest) = text.strip_prefix('(') else {
        return text.to_owned();
    };
    let Some((id, name)) = rest.split_once(')') else {
        return text.to_owned();
    };
    let name = name.trim();
    if name.is_empty() {
        names.get(id).cloned().unwrap_or_else(|| format!("({id})"))
    } else {
        names.insert(id.to_owned(), name.to_owned());
        name.to_owned()
    }
}

/// One stack x workload count: a line of `cost.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostRecord {
    pub schema_version: u32,
    pub stack: String,
    pub db: DbKind,
    pub workload: WorkloadKind,
    /// Which process (1-based): each count is taken in `runs` fresh server processes.
    pub run: usize,
    /// Which `loadgen cost` command took it (its start, UTC): the counts of one command are
    /// one column, and two commands' columns show how well the column reproduces.
    #[serde(default)]
    pub invocation: String,
    /// Requests sent before the counters were zeroed.
    pub warmup: usize,
    /// Requests counted.
    pub requests: usize,
    /// Each counted request was sent this long after the response before it (0 in records
    /// from before this wait: back to back).
    #[serde(default)]
    pub settle_ms: f64,
    /// Tasks seeded through the API before the first workload.
    pub seeded: usize,
    /// Counted requests not answered as the workload expects (the count is void unless 0).
    pub errors: usize,
    /// The server's instructions over the counted requests (every thread).
    pub instructions: u64,
    pub per_request: f64,
    /// Self instructions per [`Category`], over the counted requests.
    pub split: BTreeMap<Category, u64>,
    /// The server binary's build profile.
    pub build_profile: Option<String>,
    pub valgrind: String,
    /// How the server's threads were scheduled ([`Schedule::Shared`] in records from before
    /// the choice).
    #[serde(default = "Schedule::before_the_choice")]
    pub schedule: Schedule,
    pub git_commit: Option<String>,
    /// UTC, RFC 3339.
    pub date: String,
}

/// How the server process's threads take turns under valgrind, which runs one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// The process pinned to a core of its own at real-time priority (`taskset`, `chrt -f
    /// 1`): a thread that hands work to another (a request to the database thread, an answer
    /// back) runs on until it blocks, so the same requests always interleave the threads
    /// alike. Needs the right to raise priority (root or `CAP_SYS_NICE`).
    RunToBlock,
    /// The kernel's ordinary scheduling, on any core: which thread runs after a hand-off is a
    /// race, so counts of stacks whose database calls cross threads vary by process (up to
    /// 7 % measured).
    Shared,
}

impl Schedule {
    /// What records from before the choice were counted with.
    const fn before_the_choice() -> Self {
        Self::Shared
    }

    /// Its name in flags (clap's kebab-case, which records share: tested).
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .expect("every schedule is a flag value")
            .get_name()
            .to_owned()
    }

    /// The command prefix that schedules a process this way on `core`.
    fn prefix(self, core: usize) -> Vec<String> {
        match self {
            Self::RunToBlock => ["taskset", "-c", &core.to_string(), "chrt", "-f", "1"]
                .map(str::to_owned)
                .to_vec(),
            Self::Shared => Vec::new(),
        }
    }

    /// Whether this machine lets loadgen schedule a process this way (`chrt` exists and may
    /// raise priority); the error says why not.
    pub fn available(self) -> anyhow::Result<()> {
        let prefix = self.prefix(0);
        let Some((program, args)) = prefix.split_first() else {
            return Ok(());
        };
        let out = Command::new(program)
            .args(args)
            .arg("true")
            .output()
            .with_context(|| format!("cannot run {program}"))?;
        if !out.status.success() {
            bail!(
                "{} true: {}",
                prefix.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// Reads `cost.jsonl`; an empty list if the file does not exist.
pub fn read_all(path: &Path) -> anyhow::Result<Vec<CostRecord>> {
    crate::record::jsonl_lines(path)?
        .into_iter()
        .map(|(n, line)| {
            let at = || format!("{} line {n}", path.display());
            let value: serde_json::Value = serde_json::from_str(&line).with_context(at)?;
            let version = value
                .get("schema_version")
                .and_then(serde_json::Value::as_u64);
            if version != Some(u64::from(COST_SCHEMA_VERSION)) {
                bail!(
                    "{}: schema_version {version:?}, this loadgen reads {COST_SCHEMA_VERSION}",
                    at()
                );
            }
            serde_json::from_value(value).with_context(at)
        })
        .collect()
}

/// How to count.
#[derive(Debug, Clone)]
pub struct CostOptions {
    pub workloads: Vec<WorkloadKind>,
    pub warmup: usize,
    pub requests: usize,
    /// Tasks seeded through the API for the workloads that read or write existing tasks.
    pub seed: usize,
    pub runs: usize,
    /// The pause before each counted request ([`settle_server`]), and before the counters
    /// are zeroed.
    pub settle: Duration,
    /// This command's name for its counts ([`CostRecord::invocation`]).
    pub invocation: String,
    /// Where callgrind's dumps and logs go (kept for `callgrind_annotate`).
    pub dir: PathBuf,
    pub valgrind: String,
    pub callgrind_control: String,
    pub schedule: Schedule,
    pub git_commit: Option<String>,
}

/// Per-request timeout: generous, since everything runs 20-100 times slower under valgrind.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The valgrind version, or an error saying how to install it.
pub fn valgrind_version(valgrind: &str) -> anyhow::Result<String> {
    let out = Command::new(valgrind).arg("--version").output().with_context(|| {
        format!("cannot run {valgrind:?}: the cost column needs valgrind (Debian: apt-get install valgrind)")
    })?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Counts every workload of `opts` for one stack in one fresh server process (`run`, from 1)
/// on `core` (where [`Schedule`] pins it); `progress` gets each count as it is taken.
pub fn count_stack(
    opts: &CostOptions,
    stack: &str,
    binary: &Path,
    (run, core): (usize, usize),
    mut progress: impl FnMut(&CostRecord),
) -> anyhow::Result<Vec<CostRecord>> {
    let valgrind = valgrind_version(&opts.valgrind)?;
    let out = opts.dir.join(format!("callgrind.{stack}.{run}.out"));
    // Dumps of an earlier attempt would be mistaken for this one's.
    remove_dumps(&out)?;
    let mut wrapper = opts.schedule.prefix(core);
    wrapper.extend([
        opts.valgrind.clone(),
        "--tool=callgrind".to_owned(),
        format!("--callgrind-out-file={}", out.display()),
        format!(
            "--log-file={}",
            opts.dir
                .join(format!("valgrind.{stack}.{run}.log"))
                .display()
        ),
    ]);
    let spec = ServerSpec {
        workers: 1,
        pool_size: Some(2),
        wrapper,
        startup_timeout: Duration::from_secs(300),
        ..ServerSpec::new(binary)
    };
    let mut server = spec
        .start(DbKind::Sqlite, None)
        .with_context(|| format!("starting {stack} under callgrind"))?;
    server.wait_healthy(Duration::from_secs(120))?;
    let counted = count_server(opts, &server, &out, run);
    let stopped = server.stop(Duration::from_secs(60));
    let counted = counted.with_context(|| format!("counting {stack} (run {run})"))?;
    stopped?;
    let mut records = Vec::new();
    for (workload, seeded, errors, profile) in counted {
        let record = CostRecord {
            schema_version: COST_SCHEMA_VERSION,
            stack: stack.to_owned(),
            db: DbKind::Sqlite,
            workload,
            run,
            invocation: opts.invocation.clone(),
            warmup: opts.warmup,
            requests: opts.requests,
            settle_ms: opts.settle.as_secs_f64() * 1e3,
            seeded,
            errors,
            instructions: profile.total,
            per_request: profile.total as f64 / opts.requests as f64,
            split: profile.split(),
            build_profile: crate::record::build_profile_of(binary),
            valgrind: valgrind.clone(),
            schedule: opts.schedule,
            git_commit: opts.git_commit.clone(),
            date: crate::record::utc_now_rfc3339(),
        };
        progress(&record);
        records.push(record);
    }
    Ok(records)
}

fn remove_dumps(out: &Path) -> anyhow::Result<()> {
    let (Some(dir), Some(name)) = (out.parent(), out.file_name()) else {
        return Ok(());
    };
    let name = name.to_string_lossy();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(name.as_ref())
        {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

type Counted = (WorkloadKind, usize, usize, Profile);

fn count_server(
    opts: &CostOptions,
    server: &Server,
    out: &Path,
    run: usize,
) -> anyhow::Result<Vec<Counted>> {
    let addr = server.addr();
    let mut client = Client::connect(addr)?;
    let needs_seed = opts.workloads.iter().any(|w| w.needs_seed());
    let seeded = if needs_seed {
        client.create_tasks(opts.seed)?
    } else {
        Vec::new()
    };
    let mut results = Vec::new();
    for (dump, &kind) in opts.workloads.iter().enumerate() {
        let pool = if kind.needs_delete_pool() {
            client.create_tasks(opts.warmup + opts.requests)?
        } else {
            Vec::new()
        };
        let ids = Arc::new(SeededIds::new(seeded.clone(), pool));
        let mut generator = RequestGen::new(Workload::new(kind), ids, &addr.to_string(), 0, 1)?;
        client
            .send_all(&mut generator, opts.warmup, None)
            .with_context(|| format!("{kind} warm-up"))?;
        settle_server(opts.settle);
        control(opts, server.pid(), "--zero")?;
        let errors = client
            .send_all(&mut generator, opts.requests, Some(opts.settle))
            .with_context(|| format!("{kind}"))?;
        control(opts, server.pid(), &format!("--dump={kind}-run{run}"))?;
        let file = PathBuf::from(format!("{}.{}", out.display(), dump + 1));
        let profile = Profile::read(&file)?;
        results.push((kind, seeded.len(), errors, profile));
    }
    Ok(results)
}

fn control(opts: &CostOptions, pid: u32, action: &str) -> anyhow::Result<()> {
    let out = Command::new(&opts.callgrind_control)
        .arg(action)
        .arg(pid.to_string())
        .output()
        .with_context(|| format!("cannot run {}", opts.callgrind_control))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || !text.contains("OK") {
        bail!(
            "{} {action} {pid} failed: {}{}",
            opts.callgrind_control,
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// One keep-alive connection sending requests one at a time.
struct Client {
    addr: SocketAddr,
    stream: TcpStream,
    reader: Reader,
}

impl Client {
    fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            addr,
            stream,
            reader: Reader::default(),
        })
    }

    /// Sends `request` and reads its response.
    fn round_trip(&mut self, request: &[u8]) -> anyhow::Result<wire::Response<'_>> {
        self.stream
            .write_all(request)
            .with_context(|| format!("sending to {}", self.addr))?;
        self.reader
            .read_blocking(&mut self.stream, false, Instant::now() + REQUEST_TIMEOUT)
            .map_err(|err| anyhow::anyhow!("{err}"))
            .with_context(|| format!("reading from {}", self.addr))
    }

    /// Creates `n` tasks through the API, one request at a time; their ids.
    fn create_tasks(&mut self, n: usize) -> anyhow::Result<Vec<i64>> {
        let host = self.addr.to_string();
        let mut request = Vec::new();
        (0..n)
            .map(|i| {
                let body = format!("{{\"name\":\"seed {i}\",\"done\":false}}");
                wire::write_request(&mut request, "POST", "/tasks", &host, Some(body.as_bytes()));
                let response = self.round_trip(&request)?;
                match (response.status, created_id(response.body)) {
                    (201, Some(id)) => Ok(id),
                    (status, _) => bail!("seeding: {status} {}", wire::excerpt(response.body)),
                }
            })
            .collect()
    }

    /// Sends `n` requests of the generator's workload; how many were not answered as expected.
    /// With `settle`, each is sent that long after the response before it.
    fn send_all(
        &mut self,
        generator: &mut RequestGen,
        n: usize,
        settle: Option<Duration>,
    ) -> anyhow::Result<usize> {
        let mut errors = 0;
        for _ in 0..n {
            let planned = generator
                .next_request()
                .context("the workload ran out of seeded ids")?;
            if let Some(settle) = settle {
                settle_server(settle);
            }
            let (op, expect_id) = (planned.op, planned.expect_id);
            let response = self.round_trip(planned.request)?;
            if generator.check(op, expect_id, &response, true) != Verdict::Ok {
                errors += 1;
            }
        }
        Ok(errors)
    }
}

/// Waits `settle` before a counted request, so that it finds the server idle.
///
/// A response reaches the client before the server has finished with its request: it still
/// returns a connection to its pool, re-arms timers, polls the socket again, parks its
/// threads. A request sent in the middle of that finds the server in another state than one
/// sent after it (a thread awake or asleep, a future polled once more or not), and under
/// valgrind's serialised threads which of the two happens is a race whose odds change from one
/// process to the next. Measured here (`read`, 3-5 processes each): sent back to back,
/// hyper-raw's count varied by 5.7 % and actix-web's by 13-30 % between processes; 20 ms apart,
/// by 0.4-1 % and 2.3-2.7 %. (Watching `/proc` for the server's threads to sleep instead of
/// waiting a fixed time made it worse: the watching itself moved the counts by 5 %.)
fn settle_server(settle: Duration) {
    std::thread::sleep(settle);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_from_before_the_schedule_choice_read_as_shared() {
        let line = r#"{"schema_version":1,"stack":"s","db":"sqlite","workload":"read","run":1,
            "warmup":100,"requests":300,"seeded":1000,"errors":0,"instructions":3000,
            "per_request":10.0,"split":{},"build_profile":null,"valgrind":"v","git_commit":null,
            "date":"d"}"#;
        let old: CostRecord = serde_json::from_str(line).unwrap();
        assert_eq!(old.schedule, Schedule::Shared);
        let mut new = old.clone();
        new.schedule = Schedule::RunToBlock;
        let text = serde_json::to_string(&new).unwrap();
        assert!(text.contains(r#""schedule":"run-to-block""#), "{text}");
        for schedule in [Schedule::RunToBlock, Schedule::Shared] {
            assert_eq!(
                serde_json::to_string(&schedule).unwrap(),
                format!("\"{}\"", schedule.name())
            );
        }
        assert_eq!(serde_json::from_str::<CostRecord>(&text).unwrap(), new);
    }

    #[test]
    fn run_to_block_pins_the_process_and_raises_its_priority() {
        assert_eq!(
            Schedule::RunToBlock.prefix(1).join(" "),
            "taskset -c 1 chrt -f 1"
        );
        assert!(Schedule::Shared.prefix(1).is_empty());
        assert!(Schedule::Shared.available().is_ok());
    }

    #[test]
    fn functions_count_where_their_first_non_std_crate_belongs() {
        let cases = [
            ("x", "hyper::proto::h1::role::Server::parse", Category::Http),
            (
                "x",
                "core::ptr::drop_in_place<hyper::proto::h1::conn::Conn<T>>",
                Category::Http,
            ),
            (
                "x",
                "<serde_json::ser::Compound<W,F> as serde::ser::SerializeStruct>::serialize_field",
                Category::Json,
            ),
            (
                "x",
                "<alloc::vec::Vec<T> as serde::ser::Serialize>::serialize",
                Category::Json,
            ),
            ("x", "alloc::raw_vec::RawVec<T,A>::grow_one", Category::Std),
            ("x", "sqlite3VdbeExec", Category::Database),
            (
                "x",
                "diesel::query_builder::QueryFragment::to_sql",
                Category::Database,
            ),
            ("x", "sqlx_sqlite::connection::worker", Category::Database),
            ("x", "tokio::runtime::park::Inner::park", Category::Runtime),
            ("x", "actix_http::h1::decoder::parse", Category::Http),
            ("x", "shared::store::TaskStore::get", Category::App),
            (
                "/lib/x86_64-linux-gnu/libc.so.6",
                "_int_malloc",
                Category::Allocator,
            ),
            (
                "/lib/x86_64-linux-gnu/libc.so.6",
                "__memcpy_avx_unaligned_erms",
                Category::Libc,
            ),
            (
                "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "_dl_lookup",
                Category::Libc,
            ),
            (
                "/bin/server",
                "walFindFrame.constprop.0",
                Category::Database,
            ),
            ("/usr/lib/libpq.so.5", "PQexec", Category::Database),
            (
                "/usr/lib/libgcc_s.so.1",
                "_Unwind_Find_FDE",
                Category::Other,
            ),
        ];
        for (object, function, expected) in cases {
            assert_eq!(classify(object, function), expected, "{function}");
        }
    }

    #[test]
    fn path_roots_skip_inner_segments() {
        let roots: Vec<&str> =
            path_roots("<hyper::a::B as tower_service::Service<R>>::call").collect();
        assert_eq!(roots, ["hyper", "tower_service"]);
    }

    #[test]
    fn profiles_sum_self_costs_and_skip_inclusive_call_costs() {
        let text = "\
version: 1
events: Ir
summary: 1000
ob=(1) /bin/server
fl=(1) ???
fn=(1) hyper::parse
0 100
cob=(2) /lib/libc.so.6
cfn=(2) malloc
calls=1 0
0 400
+2 50
ob=(2)
fn=(2)
0 400
ob=(1)
fn=(1)
0 25
fn=(3) sqlite3VdbeExec
* 7
";
        let profile = Profile::parse(text.as_bytes()).unwrap();
        assert_eq!(profile.total, 1000);
        let own = |o: &str, f: &str| profile.functions[&(o.to_owned(), f.to_owned())];
        assert_eq!(own("/bin/server", "hyper::parse"), 175);
        assert_eq!(own("/lib/libc.so.6", "malloc"), 400);
        assert_eq!(own("/bin/server", "sqlite3VdbeExec"), 7);
        let split = profile.split();
        assert_eq!(split[&Category::Http], 175);
        assert_eq!(split[&Category::Allocator], 400);
        assert_eq!(split[&Category::Database], 7);
    }

    #[test]
    fn records_of_another_version_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cost.jsonl");
        std::fs::write(&path, "{\"schema_version\":99}\n").unwrap();
        let err = read_all(&path).unwrap_err();
        assert!(format!("{err:#}").contains("schema_version"), "{err:#}");
        assert!(read_all(&dir.path().join("none.jsonl")).unwrap().is_empty());
    }
}
