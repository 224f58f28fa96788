//! `mcpsiem collect …`: the collectors.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

use crate::commands::collect as run;
use crate::config::Config;
use crate::output::print_json_line;

#[derive(Subcommand)]
pub enum CollectCommand {
    /// Sit between an MCP client and an MCP server, passing every byte through and recording
    /// each message: `collect proxy --stdio -- npx @modelcontextprotocol/server-everything`,
    /// or `collect proxy --http --listen 127.0.0.1:8931 --upstream http://127.0.0.1:3001/mcp`.
    Proxy {
        /// Run COMMAND as a stdio MCP server behind this process's stdin and stdout.
        #[arg(long, conflicts_with = "http", required_unless_present = "http")]
        stdio: bool,
        /// Proxy Streamable HTTP from --listen to --upstream.
        #[arg(long, requires_all = ["listen", "upstream"])]
        http: bool,
        /// Address the HTTP proxy listens on (HOST:PORT).
        #[arg(long)]
        listen: Option<String>,
        /// The MCP server's URL (its endpoint, such as http://host:3001/mcp).
        #[arg(long)]
        upstream: Option<String>,
        /// The public URL clients use for the server (its tokens' audience); default
        /// collect.resource_uri.
        #[arg(long, requires = "http")]
        resource_uri: Option<String>,
        /// The stdio MCP server's command and arguments.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Follow JSON-lines logs of MCP gateways (agentgateway, Docker MCP gateway, our own
    /// format), through rotation, keeping read positions across restarts.
    Tail {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// auto (per line), mcpsiem, agentgateway or docker.
        #[arg(long, default_value = "auto")]
        format: mcpsiem_collect::tail::formats::LogFormat,
        /// For files with no saved position, start at their end (skip what is there).
        #[arg(long)]
        from_end: bool,
        /// Read every file to its end, ship it, and exit (a backfill).
        #[arg(long)]
        once: bool,
    },
    /// A minimal stdio MCP server that answers at once (the proxy benchmark's upstream).
    #[command(hide = true)]
    EchoServer,
    /// Take events over HTTP: `POST /v1/events` (JSON, JSON array or NDJSON; gzip accepted).
    Http {
        /// HOST:PORT; default collect.intake.listen.
        #[arg(long)]
        listen: Option<String>,
    },
}

impl CollectCommand {
    pub fn run(self, config: &Config) -> Result<()> {
        match self {
            CollectCommand::Proxy { stdio: true, command, .. } => {
                let code = run::run_stdio_proxy(config, &command)?;
                std::process::exit(code);
            }
            CollectCommand::Proxy { listen, upstream, resource_uri, .. } => {
                let resource_uri = resource_uri.unwrap_or_else(|| config.collect.resource_uri.clone());
                run::run_http_proxy(config, &listen.unwrap_or_default(), &upstream.unwrap_or_default(), &resource_uri)
            }
            CollectCommand::EchoServer => Ok(mcpsiem_collect::echo_server::run()?),
            CollectCommand::Tail { paths, format, from_end, once } => {
                print_json_line(&run::run_tail(config, &paths, format, from_end, once)?)
            }
            CollectCommand::Http { listen } => {
                run::run_intake(config, listen.as_deref().unwrap_or(&config.collect.intake.listen))
            }
        }
    }
}
