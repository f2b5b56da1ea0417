//! A real `redis-server` for the tests: a child process on a free port of 127.0.0.1 that a
//! test can stop and start again on the same port, to see what its client does while the
//! store is down and after it comes back.
//!
//! The binary is the Debian package `redis-server`, which `.ci/run` installs (pinned) before
//! the tests; on a developer machine, `apt-get install redis-server`. Each server keeps
//! nothing on disk (`--save '' --appendonly no`) and runs in a fresh directory under the
//! system temp dir (`--dir`), removed when it is dropped, so no dump file lands in the repo.
//!
//! Readiness is checked without a Redis client: a raw `PING` over TCP, answered `+PONG`, or
//! `-NOAUTH` when the server has a password.
//!
//! ```no_run
//! let mut redis = oauth_grpc_tests::redis::RedisServer::start();
//! let url = redis.url(); // redis://127.0.0.1:<port>
//! redis.stop(); // the store is down; the port number is kept
//! redis.restart(); // up again on the same port, empty
//! # drop(url);
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a started server has to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// How many times [`RedisServer::restart`] tries to bind the port again.
const RESTART_ATTEMPTS: u32 = 5;

/// A `redis-server` child process on `127.0.0.1:<free port>`; killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    password: Option<String>,
    dir: PathBuf,
    /// `None` while stopped. In a mutex so that [`RedisServer::is_running`] can poll the
    /// child (`try_wait` needs `&mut`) through `&self`.
    child: Mutex<Option<Child>>,
}

impl RedisServer {
    /// A server without a password, answering `PING` when this returns.
    ///
    /// # Panics
    ///
    /// If `redis-server` is not on `PATH` (the message says to `apt-get install
    /// redis-server`), or it does not answer within 10 s.
    pub fn start() -> RedisServer {
        RedisServer::launch(None)
    }

    /// A server that requires `password` (`--requirepass`): commands before `AUTH` get
    /// `-NOAUTH`. Clients give it in the URL: `redis://:<password>@127.0.0.1:<port>`.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`].
    pub fn with_password(password: &str) -> RedisServer {
        RedisServer::launch(Some(password.to_owned()))
    }

    fn launch(password: Option<String>) -> RedisServer {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "oauth-grpc-redis-{}-{}-{port}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| {
            panic!("cannot create the redis-server dir {}: {e}", dir.display())
        });
        let server = RedisServer {
            port,
            password,
            dir,
            child: Mutex::new(None),
        };
        let child = server
            .spawn_ready()
            .unwrap_or_else(|e| panic!("redis-server on 127.0.0.1:{port} did not start: {e}"));
        *server.child.lock().unwrap_or_else(|p| p.into_inner()) = Some(child);
        server
    }

    /// `redis://127.0.0.1:<port>` (without the password).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port, the same across [`RedisServer::stop`] and [`RedisServer::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server and waits for it to exit: connections drop and the port refuses.
    /// The port number is kept for [`RedisServer::restart`] (nothing can hold it while no
    /// process listens; another one taking it meanwhile is what `restart` retries for). Its
    /// data is gone: a restarted server is empty. Stopping a stopped server does nothing.
    pub fn stop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(mut child) = child.take() {
            kill(&mut child);
        }
    }

    /// Starts the server again on the same port with the same password, and waits until it
    /// answers; stops it first if it is running. Retries a few times if the port is briefly
    /// busy.
    ///
    /// # Panics
    ///
    /// If it does not come back after 5 attempts.
    pub fn restart(&mut self) {
        self.stop();
        let mut last = String::new();
        for attempt in 1..=RESTART_ATTEMPTS {
            match self.spawn_ready() {
                Ok(child) => {
                    *self.child.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(child);
                    return;
                }
                Err(e) => {
                    last = e;
                    std::thread::sleep(Duration::from_millis(100 * u64::from(attempt)));
                }
            }
        }
        panic!(
            "redis-server did not restart on 127.0.0.1:{} after {RESTART_ATTEMPTS} attempts: {last}",
            self.port
        );
    }

    /// Whether the server process is alive (started or restarted, not stopped, not exited).
    pub fn is_running(&self) -> bool {
        let mut child = self.child.lock().unwrap_or_else(|p| p.into_inner());
        child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Spawns `redis-server` on the port and waits until it answers `PING`; an error (the
    /// child killed) if it exits first (the port was taken) or stays silent.
    fn spawn_ready(&self) -> Result<Child, String> {
        let port = self.port.to_string();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port, "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "`redis-server` is not on PATH: install it with `apt-get install redis-server` \
                 (.ci/run does)"
            ),
            Err(e) => panic!("cannot run redis-server: {e}"),
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("it exited ({status}): is the port in use?"));
            }
            match ping(self.port) {
                Ok(reply) if reply == "+PONG" || reply.starts_with("-NOAUTH") => return Ok(child),
                Ok(reply) => {
                    kill(&mut child);
                    return Err(format!("PING was answered {reply:?}"));
                }
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => {
                    kill(&mut child);
                    return Err(format!("no answer to PING within {READY_WITHIN:?}: {e}"));
                }
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// The first line of the answer to a raw `PING` on 127.0.0.1:`port`, without its CRLF.
fn ping(port: u16) -> std::io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"PING\r\n")?;
    let mut line = String::new();
    if BufReader::new(stream).read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end().to_owned())
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}
