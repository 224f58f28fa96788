//! A local Tansu broker: the embedded default for `mcpsiem up` and the real broker tests use.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Why the broker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "the Tansu broker is not installed: run `scripts/setup` (it runs `cargo install tansu --locked --features dynostore,libsql`), or set MCPSIEM_TANSU to its path"
    )]
    NotInstalled,
    #[error("could not start Tansu at {binary}: {source}")]
    Spawn { binary: PathBuf, source: std::io::Error },
    #[error("Tansu did not accept connections on {address} within {waited:?}; its log is {log}")]
    NotReady { address: String, waited: Duration, log: PathBuf },
    #[error("could not prepare the broker directory {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
    #[error(
        "port {port} is taken by another process (not a broker this data directory started): stop it, pass --broker-port, or set kafka.brokers to use it"
    )]
    PortTaken { port: u16 },
    #[error("the broker started on port {port} exited at once, yet something answers there; its log is {log}")]
    NotOurs { port: u16, log: PathBuf },
}

/// The file in the broker's directory naming the process that serves it.
const PID_FILE: &str = "tansu.pid";

/// True when something accepts connections on loopback `port`.
fn listening(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// A broker an earlier run started in `dir` and left behind (the run was killed before it
/// could stop it): its pid, when that process is alive and is Tansu.
fn stale_broker(dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(dir.join(PID_FILE)).ok()?.trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline).contains("tansu").then_some(pid)
}

/// A running Tansu process, stopped when dropped.
pub struct TansuBroker {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// Finds the Tansu binary: `$MCPSIEM_TANSU`, then `PATH`, then `~/.cargo/bin`.
pub fn find_tansu() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("MCPSIEM_TANSU").map(PathBuf::from) {
        return path.exists().then_some(path);
    }
    let in_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"))
        .find(|p| p.is_file());
    in_path.or_else(|| {
        let home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
        Some(home.join("bin").join("tansu")).filter(|p| p.is_file())
    })
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl TansuBroker {
    /// Starts a broker storing its data in `dir` (SQLite through libsql), on `port` or a free
    /// loopback port, and waits until it accepts connections.
    pub fn start(dir: &Path, port: Option<u16>) -> Result<Self, BrokerError> {
        let io = |source| BrokerError::Io { dir: dir.to_owned(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let port = match port {
            Some(port) => port,
            None => free_port().map_err(io)?,
        };
        if let Some(pid) = stale_broker(dir) {
            tracing::warn!(pid, dir = %dir.display(), "stopping the broker an earlier run left behind");
            // SAFETY: kill(2) with a pid read from our own pid file, checked to be Tansu.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while listening(port) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if listening(port) {
            return Err(BrokerError::PortTaken { port });
        }
        let child = spawn(dir, port)?;
        let mut broker = Self { child, port, dir: dir.to_owned() };
        broker.wait_ready(Duration::from_secs(30))?;
        Ok(broker)
    }

    /// True once the broker process has exited (crashed, or killed from outside).
    pub fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), BrokerError> {
        let started = Instant::now();
        let address = self.bootstrap();
        while started.elapsed() < limit {
            if std::net::TcpStream::connect_timeout(
                &address.parse().expect("a loopback address"),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                // Something answers: it must be our child, not a process that held the port.
                std::thread::sleep(Duration::from_millis(100));
                if let Ok(Some(_)) = self.child.try_wait() {
                    return Err(BrokerError::NotOurs { port: self.port, log: self.dir.join("tansu.log") });
                }
                return Ok(());
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(BrokerError::NotReady { address, waited: started.elapsed(), log: self.dir.join("tansu.log") })
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's process id (tests stop and continue it with signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the broker (SIGKILL: Tansu commits each write to SQLite, so nothing is lost),
    /// keeping its data for a restart.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(self.dir.join(PID_FILE));
    }

    /// Starts the broker again on the same port and data.
    pub fn restart(&mut self) -> Result<(), BrokerError> {
        self.stop();
        self.child = spawn(&self.dir, self.port)?;
        self.wait_ready(Duration::from_secs(30))
    }
}

impl Drop for TansuBroker {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(dir: &Path, port: u16) -> Result<Child, BrokerError> {
    let binary = find_tansu().ok_or(BrokerError::NotInstalled)?;
    let io = |source| BrokerError::Io { dir: dir.to_owned(), source };
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("tansu.log")).map_err(io)?;
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new(&binary);
    // The broker dies with the process that started it, even a SIGKILLed one, instead of
    // holding the port for the next run. Linux sends the signal when the *thread* that
    // forked exits: brokers are started from threads that outlive them (`up`'s main thread,
    // a test's own thread).
    // SAFETY: prctl(2) is async-signal-safe, the only call made between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .arg("broker")
        .args(["--listener-url", &url, "--advertised-listener-url", &url])
        // Tansu resolves the SQLite path against its working directory, even an absolute one.
        .args(["--storage-engine", "sqlite://tansu.db"])
        .current_dir(dir)
        // Its own process group: a Ctrl-C in the terminal reaches `mcpsiem up`, which stops
        // its stages (they still need the broker to flush) before it stops the broker.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(io)?)
        .stderr(log)
        .spawn()
        .map_err(|source| BrokerError::Spawn { binary, source })?;
    std::fs::write(dir.join(PID_FILE), child.id().to_string()).map_err(io)?;
    Ok(child)
}
