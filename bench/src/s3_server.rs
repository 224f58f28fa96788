//! A local S3-protocol server for the object-store tests and benchmarks: moto's server mode,
//! which `scripts/setup` installs into `.tools/python-s3`. It keeps objects in memory and
//! answers S3's conditional writes (`If-None-Match: *` → 412) as AWS does.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where `scripts/setup` installs moto.
fn python_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/python-s3")
}

/// A running server with one bucket; stopped when dropped.
pub struct S3Server {
    child: Child,
    pub port: u16,
    pub bucket: String,
    _log_dir: tempfile::TempDir,
}

impl S3Server {
    /// Starts the server on a free loopback port and makes `bucket`.
    pub fn start(bucket: &str) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log_dir = tempfile::tempdir()?;
        let log = std::fs::File::create(log_dir.path().join("moto.log"))?;
        let child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
            .env("PYTHONPATH", python_path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting python3 -m moto.server")?;
        let mut server = Self { child, port, bucket: bucket.to_owned(), _log_dir: log_dir };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "the S3 server (moto) exited with {status}: run scripts/setup to install it into {}",
                    python_path().display()
                );
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("the S3 server (moto) did not listen on port {port} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        server.request("PUT", &format!("/{bucket}"))?;
        Ok(server)
    }

    /// One unsigned request (moto accepts them for bucket set-up); fails unless it is 2xx.
    fn request(&self, method: &str, path: &str) -> Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        let status = answer.split_whitespace().nth(1).unwrap_or_default();
        if !status.starts_with('2') {
            bail!("{method} {path} on the S3 server answered {}", answer.lines().next().unwrap_or_default());
        }
        Ok(())
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The lake URL for `prefix` in the bucket.
    pub fn location(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// The `lake.options` that reach this server.
    pub fn options(&self) -> BTreeMap<String, String> {
        [
            ("aws_endpoint", self.endpoint()),
            ("aws_allow_http", "true".to_owned()),
            ("aws_region", "us-east-1".to_owned()),
            ("aws_access_key_id", "mcpsiem-test".to_owned()),
            ("aws_secret_access_key", "mcpsiem-test".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A `[lake]` section putting the lake at `prefix` on this server.
    pub fn lake_toml(&self, prefix: &str) -> String {
        let mut toml = format!("[lake]\nlocation = \"{}\"\n\n[lake.options]\n", self.location(prefix));
        for (key, value) in self.options() {
            toml.push_str(&format!("{key} = \"{value}\"\n"));
        }
        toml
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
