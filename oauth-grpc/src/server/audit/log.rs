//! [`JsonLines`]: the durable audit log, one [`AuditRecord`] a line, written off the request
//! path.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::{AuditEvent, AuditRecord, AuditSink, AuditUnavailable, Submission};
use crate::error::ConfigError;

/// What a [`JsonLines`] log does with a record when its queue is full (the writer cannot keep
/// up, or cannot write at all).
///
/// ```
/// use oauth_grpc::audit::Overflow;
/// assert_eq!(Overflow::default(), Overflow::Block);
/// assert_eq!("drop".parse::<Overflow>(), Ok(Overflow::Drop));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// No decision without its record: the call waits for room in the queue, up to the
    /// [block timeout](JsonLinesBuilder::block_timeout), and is refused with `UNAVAILABLE`
    /// (14) if none comes. While the writer cannot write (a full disk, a removed directory),
    /// calls are refused at once. The default.
    #[default]
    Block,
    /// Calls go on; the record is lost, counted ([`JsonLines::dropped`], the metric
    /// `oauth_grpc.audit.records.dropped`) and logged at `WARN` (at most once a minute).
    Drop,
}

impl std::str::FromStr for Overflow {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "block" => Ok(Self::Block),
            "drop" => Ok(Self::Drop),
            other => Err(format!(
                "{other:?} is not an overflow policy; give `block` (calls wait, then UNAVAILABLE) or `drop` (records are lost and counted)"
            )),
        }
    }
}

/// Where the lines go.
enum Target {
    Stdout,
    File(PathBuf),
    Writer(Box<dyn Write + Send>),
}

/// Settings of a [`JsonLines`] log; made by [`JsonLines::file`], [`JsonLines::stdout`] or
/// [`JsonLines::writer`].
///
/// ```no_run
/// use std::time::Duration;
/// use oauth_grpc::audit::{JsonLines, Overflow};
///
/// let audit = JsonLines::file("/var/log/orders/audit.jsonl")
///     .rotate_at(64 * 1024 * 1024)
///     .keep(20)
///     .overflow(Overflow::Block)
///     .block_timeout(Duration::from_secs(2))
///     .start()?;
/// # Ok::<(), oauth_grpc::ConfigError>(())
/// ```
pub struct JsonLinesBuilder {
    target: Target,
    capacity: usize,
    overflow: Overflow,
    block_timeout: Duration,
    rotate_at: u64,
    keep: usize,
}

impl fmt::Debug for JsonLinesBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLinesBuilder")
            .field("target", &target_name(&self.target))
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow)
            .field("block_timeout", &self.block_timeout)
            .field("rotate_at", &self.rotate_at)
            .field("keep", &self.keep)
            .finish()
    }
}

fn target_name(target: &Target) -> String {
    match target {
        Target::Stdout => "stdout".to_owned(),
        Target::File(path) => path.display().to_string(),
        Target::Writer(_) => "writer".to_owned(),
    }
}

impl JsonLinesBuilder {
    fn new(target: Target) -> Self {
        Self {
            target,
            capacity: 8192,
            overflow: Overflow::Block,
            block_timeout: Duration::from_secs(1),
            rotate_at: 64 * 1024 * 1024,
            keep: 10,
        }
    }

    /// How many records may wait for the writer; 8192 by default (1 to 1,048,576).
    ///
    /// ```
    /// # use oauth_grpc::audit::JsonLines;
    /// let builder = JsonLines::stdout().capacity(1024);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn capacity(mut self, records: usize) -> Self {
        self.capacity = records;
        self
    }

    /// What happens when the queue is full; [`Overflow::Block`] by default.
    ///
    /// ```
    /// # use oauth_grpc::audit::{JsonLines, Overflow};
    /// let builder = JsonLines::stdout().overflow(Overflow::Drop);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// How long a call waits for room in the queue under [`Overflow::Block`] before it is
    /// refused with `UNAVAILABLE`; 1 s by default (1 ms to 60 s).
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use oauth_grpc::audit::JsonLines;
    /// let builder = JsonLines::stdout().block_timeout(Duration::from_millis(250));
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn block_timeout(mut self, timeout: Duration) -> Self {
        self.block_timeout = timeout;
        self
    }

    /// A file log starts a new file before a line would take it past `bytes`: `audit.jsonl`
    /// becomes `audit.jsonl.1`, `.1` becomes `.2`, and so on, up to [`keep`](Self::keep)
    /// files, the oldest deleted. 64 MiB by default (at least 1 KiB). Lines are never split.
    ///
    /// ```
    /// # use oauth_grpc::audit::JsonLines;
    /// let builder = JsonLines::file("audit.jsonl").rotate_at(16 * 1024 * 1024);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn rotate_at(mut self, bytes: u64) -> Self {
        self.rotate_at = bytes;
        self
    }

    /// How many rotated files a file log keeps beside the current one; 10 by default (1 to
    /// 1000). Ship them elsewhere before they are deleted if the record must outlive that.
    ///
    /// ```
    /// # use oauth_grpc::audit::JsonLines;
    /// let builder = JsonLines::file("audit.jsonl").keep(30);
    /// # let _ = builder;
    /// ```
    #[must_use]
    pub fn keep(mut self, files: usize) -> Self {
        self.keep = files;
        self
    }

    /// Opens the file (creating it, appending to what it holds) and starts the writer
    /// thread. Needs no runtime; a call that waits under [`Overflow::Block`] waits on
    /// tokio's timer, as tonic's calls do.
    ///
    /// # Errors
    ///
    /// [`ConfigError::AuditLog`] when the file cannot be opened for appending;
    /// [`ConfigError::AuditSetting`] for a setting out of range.
    ///
    /// ```
    /// # use oauth_grpc::audit::JsonLines;
    /// let dir = std::env::temp_dir().join(format!("audit-doc-{}", std::process::id()));
    /// let error = JsonLines::file(dir.join("missing-directory").join("audit.jsonl")).start();
    /// assert!(error.unwrap_err().to_string().contains("cannot open the audit log"));
    /// ```
    pub fn start(self) -> Result<JsonLines, ConfigError> {
        if !(1..=1 << 20).contains(&self.capacity) {
            return Err(ConfigError::AuditSetting(
                "the audit queue capacity must be 1 to 1,048,576 records; give `JsonLines::capacity` a value in range",
            ));
        }
        if !(Duration::from_millis(1)..=Duration::from_secs(60)).contains(&self.block_timeout) {
            return Err(ConfigError::AuditSetting(
                "the audit block timeout must be 1 ms to 60 s; give `JsonLines::block_timeout` a value in range",
            ));
        }
        if self.rotate_at < 1024 {
            return Err(ConfigError::AuditSetting(
                "an audit log file must be allowed at least 1 KiB before it rotates; give `JsonLines::rotate_at` 1024 or more",
            ));
        }
        if !(1..=1000).contains(&self.keep) {
            return Err(ConfigError::AuditSetting(
                "an audit log keeps 1 to 1000 rotated files; give `JsonLines::keep` a value in range",
            ));
        }
        let name = target_name(&self.target);
        let out = match self.target {
            Target::Stdout => Out::Stdout(io::stdout()),
            Target::Writer(writer) => Out::Writer(writer),
            Target::File(path) => Out::File(RotatingFile::open(path, self.rotate_at, self.keep)?),
        };
        let (tx, rx) = mpsc::channel(self.capacity);
        let stats = Arc::new(Stats::default());
        let writer = Writer {
            out,
            rx,
            stats: stats.clone(),
        };
        std::thread::Builder::new()
            .name("oauth-grpc-audit".into())
            .spawn(move || writer.run())
            .map_err(|source| ConfigError::AuditLog {
                path: PathBuf::from(&name),
                source,
            })?;
        Ok(JsonLines {
            inner: Arc::new(Inner {
                tx,
                overflow: self.overflow,
                timeout: self.block_timeout,
                stats,
                name,
                started: Instant::now(),
            }),
        })
    }
}

/// The audit log auditors read: every decision of the layer as one JSON object a line
/// (JSON Lines, schema `docs/audit.schema.json`, [`AuditRecord`]), to standard output or a
/// file rotated by size. Records are queued and written by a thread of their own, off the
/// request path; what happens when the queue is full is the [`Overflow`] policy. A write
/// error is logged at `ERROR` when it starts and when writing works again, counted
/// ([`write_errors`](Self::write_errors), `oauth_grpc.audit.write.errors`), and the line is
/// retried until it is written: it is never silently lost.
///
/// ```no_run
/// use oauth_grpc::audit::JsonLines;
/// use oauth_grpc::{OAuthLayer, PolicySet, Validator};
/// # fn layer(validator: Validator, policies: PolicySet) -> Result<OAuthLayer, oauth_grpc::ConfigError> {
///
/// let audit = JsonLines::file("/var/log/orders/audit.jsonl").start()?;
/// let layer = OAuthLayer::new(validator, policies).audit_sink(audit.clone());
/// // at shutdown: audit.flush().await
/// # Ok(layer)
/// # }
/// ```
#[derive(Clone)]
pub struct JsonLines {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Message>,
    overflow: Overflow,
    timeout: Duration,
    stats: Arc<Stats>,
    name: String,
    started: Instant,
}

#[derive(Default)]
struct Stats {
    written: AtomicU64,
    dropped: AtomicU64,
    refused: AtomicU64,
    write_errors: AtomicU64,
    /// The writer cannot write now.
    failing: AtomicBool,
    /// Seconds since start of the last drop warning, plus one; 0 before the first.
    warned_at: AtomicU64,
}

enum Message {
    Line(String),
    Flush(oneshot::Sender<()>),
}

impl fmt::Debug for JsonLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLines")
            .field("target", &self.inner.name)
            .field("overflow", &self.inner.overflow)
            .field("written", &self.written())
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl JsonLines {
    /// A log appended to the file at `path`, rotated by size.
    ///
    /// ```
    /// # use oauth_grpc::audit::JsonLines;
    /// let builder = JsonLines::file("audit.jsonl");
    /// # let _ = builder;
    /// ```
    pub fn file(path: impl Into<PathBuf>) -> JsonLinesBuilder {
        JsonLinesBuilder::new(Target::File(path.into()))
    }

    /// A log on standard output, for a platform that collects it.
    ///
    /// ```
    /// # use oauth_grpc::audit::JsonLines;
    /// let audit = JsonLines::stdout().start()?;
    /// # let _ = audit;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    pub fn stdout() -> JsonLinesBuilder {
        JsonLinesBuilder::new(Target::Stdout)
    }

    /// A log written to `writer` (a socket, a pipe), flushed whenever the queue is empty.
    ///
    /// ```
    /// # use oauth_grpc::audit::JsonLines;
    /// let audit = JsonLines::writer(std::io::sink()).start()?;
    /// # let _ = audit;
    /// # Ok::<(), oauth_grpc::ConfigError>(())
    /// ```
    pub fn writer(writer: impl Write + Send + 'static) -> JsonLinesBuilder {
        JsonLinesBuilder::new(Target::Writer(Box::new(writer)))
    }

    /// Waits until every record queued before this call is written and flushed (for a file,
    /// to the disk: `fsync`). Call it at shutdown.
    ///
    /// # Errors
    ///
    /// [`AuditUnavailable`] if the writer is gone.
    ///
    /// ```
    /// # use oauth_grpc::audit::{AuditEvent, AuditSink, Decision, JsonLines};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let audit = JsonLines::writer(std::io::sink()).start()?;
    /// audit.record(&AuditEvent::new(Decision::Deny, "no_rule", "/x.Y/Z"));
    /// audit.flush().await?;
    /// assert_eq!(audit.written(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn flush(&self) -> Result<(), AuditUnavailable> {
        let (done, wait) = oneshot::channel();
        self.inner
            .tx
            .send(Message::Flush(done))
            .await
            .map_err(|_| AuditUnavailable)?;
        wait.await.map_err(|_| AuditUnavailable)
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.inner.stats.written.load(Ordering::Relaxed)
    }

    /// Records lost so far: under [`Overflow::Drop`] when the queue was full, and under
    /// `Block` when a caller of [`AuditSink::record`] (which cannot wait) found it full.
    pub fn dropped(&self) -> u64 {
        self.inner.stats.dropped.load(Ordering::Relaxed)
    }

    /// Calls refused with `UNAVAILABLE` under [`Overflow::Block`] because their record
    /// found no room in time (or the writer could not write).
    pub fn refused(&self) -> u64 {
        self.inner.stats.refused.load(Ordering::Relaxed)
    }

    /// Failed writes so far (each retried until it succeeds).
    pub fn write_errors(&self) -> u64 {
        self.inner.stats.write_errors.load(Ordering::Relaxed)
    }

    /// A record lost: counted, and said at `WARN` at most once a minute.
    fn lost(&self) {
        let stats = &self.inner.stats;
        let total = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        crate::metrics::audit_dropped();
        let now = self.inner.started.elapsed().as_secs() + 1;
        let last = stats.warned_at.load(Ordering::Relaxed);
        if last != 0 && now < last + 60 {
            return;
        }
        if stats
            .warned_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                target: "oauth_grpc::audit",
                log = %self.inner.name,
                dropped = total,
                "audit records dropped: the audit log cannot keep up (logged at most once a minute; see JsonLines::dropped)"
            );
        }
    }

    fn refuse(&self) -> Submission {
        self.inner.stats.refused.fetch_add(1, Ordering::Relaxed);
        Submission::wait(async { Err(AuditUnavailable) })
    }
}

impl AuditSink for JsonLines {
    /// Queues the record without waiting: a full queue loses it (counted in
    /// [`dropped`](JsonLines::dropped)). The layer uses [`submit`](AuditSink::submit).
    fn record(&self, event: &AuditEvent<'_>) {
        let line = AuditRecord::from_event(event).to_line();
        if self.inner.tx.try_send(Message::Line(line)).is_err() {
            self.lost();
        }
    }

    fn submit(&self, event: &AuditEvent<'_>) -> Submission {
        let inner = &self.inner;
        if inner.overflow == Overflow::Block && inner.stats.failing.load(Ordering::Relaxed) {
            return self.refuse();
        }
        let line = AuditRecord::from_event(event).to_line();
        match inner.tx.try_send(Message::Line(line)) {
            Ok(()) => Submission::done(),
            Err(mpsc::error::TrySendError::Full(message)) if inner.overflow == Overflow::Block => {
                let log = self.clone();
                Submission::wait(async move {
                    let inner = &log.inner;
                    match tokio::time::timeout(inner.timeout, inner.tx.send(message)).await {
                        Ok(Ok(())) => Ok(()),
                        _ => {
                            inner.stats.refused.fetch_add(1, Ordering::Relaxed);
                            Err(AuditUnavailable)
                        }
                    }
                })
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.lost();
                Submission::done()
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The writer thread is gone: nothing can be recorded.
                tracing::error!(target: "oauth_grpc::audit", log = %inner.name, "the audit log writer has stopped");
                match inner.overflow {
                    Overflow::Block => self.refuse(),
                    Overflow::Drop => {
                        self.lost();
                        Submission::done()
                    }
                }
            }
        }
    }
}

enum Out {
    Stdout(io::Stdout),
    File(RotatingFile),
    Writer(Box<dyn Write + Send>),
}

impl Out {
    /// Writes the rest of `line` from `*written` on, moving `*written` past every byte
    /// taken, so that a retry after an error resumes where the last attempt stopped and no
    /// byte is written twice.
    fn write_line(&mut self, line: &str, written: &mut usize) -> io::Result<()> {
        let bytes = line.as_bytes();
        if let Self::File(file) = self
            && *written == 0
        {
            file.before_line(bytes.len() as u64)?;
        }
        while *written < bytes.len() {
            let rest = &bytes[*written..];
            let taken = match self {
                Self::Stdout(out) => out.lock().write(rest),
                Self::File(file) => file.write(rest),
                Self::Writer(writer) => writer.write(rest),
            };
            match taken {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn flush(&mut self, durable: bool) -> io::Result<()> {
        match self {
            Self::Stdout(out) => out.flush(),
            Self::File(file) => file.flush(durable),
            Self::Writer(writer) => writer.flush(),
        }
    }
}

/// A file rotated by size: `path`, `path.1` (the newest rotated), … `path.keep`.
struct RotatingFile {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    size: u64,
    rotate_at: u64,
    keep: usize,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl RotatingFile {
    fn open(path: PathBuf, rotate_at: u64, keep: usize) -> Result<Self, ConfigError> {
        let file = open_append(&path).map_err(|source| ConfigError::AuditLog {
            path: path.clone(),
            source,
        })?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Self {
            path,
            file: Some(BufWriter::new(file)),
            size,
            rotate_at,
            keep,
        })
    }

    fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    /// Before the first byte of a line of `len` bytes: rotates if the line would take the
    /// file past the limit (lines are never split across files).
    fn before_line(&mut self, len: u64) -> io::Result<()> {
        if self.size > 0 && self.size.saturating_add(len) > self.rotate_at {
            self.rotate()?;
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(BufWriter::new(open_append(&self.path)?)),
        };
        let n = file.write(bytes)?;
        self.size += n as u64;
        Ok(n)
    }

    fn rotate(&mut self) -> io::Result<()> {
        // Everything buffered goes into the file being rotated out. A failed step is retried
        // whole: the buffer keeps what was not written yet, and a rename already done is
        // not done twice (the current file is gone, or reopened empty).
        if let Some(file) = &mut self.file {
            file.flush()?;
            file.get_ref().sync_data()?;
        }
        self.file = None;
        for n in (1..self.keep).rev() {
            match std::fs::rename(self.rotated(n), self.rotated(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        match std::fs::rename(&self.path, self.rotated(1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.size = 0;
        self.file = Some(BufWriter::new(open_append(&self.path)?));
        Ok(())
    }

    fn flush(&mut self, durable: bool) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.flush()?;
            if durable {
                file.get_ref().sync_data()?;
            }
        }
        Ok(())
    }
}

/// How long the writer lets records gather after writing a batch.
const BATCH_PAUSE: Duration = Duration::from_millis(1);

struct Writer {
    out: Out,
    rx: mpsc::Receiver<Message>,
    stats: Arc<Stats>,
}

impl Writer {
    fn run(mut self) {
        while let Some(message) = self.rx.blocking_recv() {
            self.handle(message);
            // Write what is queued, then flush once.
            while let Ok(message) = self.rx.try_recv() {
                self.handle(message);
            }
            self.retry(|out| out.flush(false));
            // Let records gather before the next wait: a writer that parks after every
            // record makes each call's send a wake-up (a system call, a context switch) on
            // the request path. A millisecond bounds how late a record is written.
            std::thread::sleep(BATCH_PAUSE);
        }
        self.retry(|out| out.flush(true));
    }

    fn handle(&mut self, message: Message) {
        match message {
            Message::Line(line) => {
                let mut written = 0;
                self.retry(|out| out.write_line(&line, &mut written));
                self.stats.written.fetch_add(1, Ordering::Relaxed);
            }
            Message::Flush(done) => {
                self.retry(|out| out.flush(true));
                let _ = done.send(());
            }
        }
    }

    /// Runs `op` until it succeeds, saying when writing fails and when it works again.
    fn retry(&mut self, mut op: impl FnMut(&mut Out) -> io::Result<()>) {
        let mut pause = Duration::from_millis(50);
        loop {
            match op(&mut self.out) {
                Ok(()) => {
                    if self.stats.failing.swap(false, Ordering::Relaxed) {
                        tracing::warn!(target: "oauth_grpc::audit", "the audit log is written again");
                    }
                    return;
                }
                Err(error) => {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                    crate::metrics::audit_write_error();
                    if !self.stats.failing.swap(true, Ordering::Relaxed) {
                        tracing::error!(
                            target: "oauth_grpc::audit",
                            %error,
                            "cannot write the audit log; retrying (under `block`, calls are refused with UNAVAILABLE until it works)"
                        );
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
