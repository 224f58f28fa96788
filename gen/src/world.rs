//! The simulated company: users, MCP clients, servers and their tools.

use rand::Rng;
use rand::seq::IndexedRandom;

/// What a tool does, which decides its arguments, results and how attacks use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolRole {
    /// Reads data of no special sensitivity.
    Read,
    /// Lists or searches.
    Search,
    /// Changes something, reversibly.
    Write,
    /// Deletes or destroys.
    Destructive,
    /// Sends data outside: email, chat, issues, HTTP requests.
    PublicSink,
}

#[derive(Clone, Debug)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub input_schema: &'static str,
    pub role: ToolRole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    Http,
}

#[derive(Clone, Debug)]
pub struct ServerSpec {
    pub name: &'static str,
    pub version: &'static str,
    pub transport: Transport,
    /// URL for HTTP servers, the command line for stdio ones.
    pub location: &'static str,
    pub tools: Vec<ToolSpec>,
}

impl ServerSpec {
    pub fn tool(&self, name: &str) -> &ToolSpec {
        self.tools.iter().find(|t| t.name == name).unwrap_or_else(|| panic!("server {} has no tool {name}", self.name))
    }
}

macro_rules! tools {
    ($(($name:literal, $role:ident, $desc:literal, $schema:literal)),+ $(,)?) => {
        vec![$(ToolSpec { name: $name, description: $desc, input_schema: $schema, role: ToolRole::$role }),+]
    };
}

/// The approved MCP servers of the simulated company.
pub fn approved_servers() -> Vec<ServerSpec> {
    vec![
        ServerSpec {
            name: "filesystem",
            version: "2025.11.3",
            transport: Transport::Stdio,
            location: "npx -y @modelcontextprotocol/server-filesystem /home/dev/projects",
            tools: tools![
                (
                    "read_file",
                    Read,
                    "Read the complete contents of a file from the file system.",
                    r#"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#
                ),
                (
                    "list_directory",
                    Search,
                    "Get a detailed listing of all files and directories in a specified path.",
                    r#"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#
                ),
                (
                    "search_files",
                    Search,
                    "Recursively search for files and directories matching a pattern.",
                    r#"{"type":"object","properties":{"path":{"type":"string"},"pattern":{"type":"string"}},"required":["path","pattern"]}"#
                ),
                (
                    "write_file",
                    Write,
                    "Create a new file or completely overwrite an existing file with new content.",
                    r#"{"type":"object","properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]}"#
                ),
                (
                    "delete_file",
                    Destructive,
                    "Delete a file from the file system.",
                    r#"{"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "github",
            version: "0.24.1",
            transport: Transport::Http,
            location: "https://mcp.github.example.com/mcp",
            tools: tools![
                (
                    "search_repositories",
                    Search,
                    "Search for GitHub repositories.",
                    r#"{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}"#
                ),
                (
                    "get_file_contents",
                    Read,
                    "Get the contents of a file or directory from a GitHub repository.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"path":{"type":"string"}},"required":["owner","repo","path"]}"#
                ),
                (
                    "list_commits",
                    Search,
                    "Get list of commits of a branch in a GitHub repository.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"}},"required":["owner","repo"]}"#
                ),
                (
                    "create_issue",
                    PublicSink,
                    "Create a new issue in a GitHub repository.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"title":{"type":"string"},"body":{"type":"string"}},"required":["owner","repo","title"]}"#
                ),
                (
                    "create_pull_request",
                    PublicSink,
                    "Create a new pull request in a GitHub repository.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"title":{"type":"string"},"head":{"type":"string"},"base":{"type":"string"}},"required":["owner","repo","title","head","base"]}"#
                ),
                (
                    "delete_branch",
                    Destructive,
                    "Delete a branch of a GitHub repository.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"branch":{"type":"string"}},"required":["owner","repo","branch"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "slack",
            version: "1.4.0",
            transport: Transport::Http,
            location: "https://mcp.slack.example.com/mcp",
            tools: tools![
                (
                    "list_channels",
                    Search,
                    "List public channels in the workspace.",
                    r#"{"type":"object","properties":{"limit":{"type":"integer"}}}"#
                ),
                (
                    "get_channel_history",
                    Read,
                    "Get recent messages from a channel.",
                    r#"{"type":"object","properties":{"channel_id":{"type":"string"},"limit":{"type":"integer"}},"required":["channel_id"]}"#
                ),
                (
                    "post_message",
                    PublicSink,
                    "Post a new message to a Slack channel.",
                    r#"{"type":"object","properties":{"channel_id":{"type":"string"},"text":{"type":"string"}},"required":["channel_id","text"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "postgres",
            version: "0.6.2",
            transport: Transport::Stdio,
            location: "npx -y @modelcontextprotocol/server-postgres postgresql://analytics-db/analytics",
            tools: tools![
                (
                    "query",
                    Read,
                    "Run a read-only SQL query.",
                    r#"{"type":"object","properties":{"sql":{"type":"string"}},"required":["sql"]}"#
                ),
                ("list_tables", Search, "List the tables of the database.", r#"{"type":"object","properties":{}}"#),
                (
                    "drop_table",
                    Destructive,
                    "Drop a table from the database.",
                    r#"{"type":"object","properties":{"table":{"type":"string"}},"required":["table"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "fetch",
            version: "2025.4.7",
            transport: Transport::Stdio,
            location: "uvx mcp-server-fetch",
            tools: tools![
                (
                    "fetch",
                    Read,
                    "Fetches a URL from the internet and optionally extracts its contents as markdown.",
                    r#"{"type":"object","properties":{"url":{"type":"string","format":"uri"},"max_length":{"type":"integer"}},"required":["url"]}"#
                ),
                (
                    "http_request",
                    PublicSink,
                    "Send an HTTP request with a method, headers and a body.",
                    r#"{"type":"object","properties":{"url":{"type":"string"},"method":{"type":"string"},"body":{"type":"string"}},"required":["url","method"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "email",
            version: "2.1.0",
            transport: Transport::Http,
            location: "https://mcp.mail.example.com/mcp",
            tools: tools![
                (
                    "search_emails",
                    Search,
                    "Search the mailbox with a query.",
                    r#"{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}"#
                ),
                (
                    "read_email",
                    Read,
                    "Read one email by id.",
                    r#"{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}"#
                ),
                (
                    "send_email",
                    PublicSink,
                    "Send an email to one or more recipients.",
                    r#"{"type":"object","properties":{"to":{"type":"array","items":{"type":"string"}},"subject":{"type":"string"},"body":{"type":"string"}},"required":["to","subject","body"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "jira",
            version: "1.0.9",
            transport: Transport::Http,
            location: "https://mcp.atlassian.example.com/v1/mcp",
            tools: tools![
                (
                    "searchJiraIssuesUsingJql",
                    Search,
                    "Search Jira issues using JQL.",
                    r#"{"type":"object","properties":{"jql":{"type":"string"}},"required":["jql"]}"#
                ),
                (
                    "getJiraIssue",
                    Read,
                    "Get the details of a Jira issue by key.",
                    r#"{"type":"object","properties":{"issueKey":{"type":"string"}},"required":["issueKey"]}"#
                ),
                (
                    "createJiraIssue",
                    PublicSink,
                    "Create a new Jira issue in a project.",
                    r#"{"type":"object","properties":{"projectKey":{"type":"string"},"summary":{"type":"string"},"description":{"type":"string"}},"required":["projectKey","summary"]}"#
                ),
            ],
        },
    ]
}

/// An MCP client application.
#[derive(Clone, Debug)]
pub struct ClientApp {
    pub name: &'static str,
    pub version: &'static str,
    pub user_agent: &'static str,
    pub oauth_client_id: &'static str,
}

pub fn client_apps() -> Vec<ClientApp> {
    vec![
        ClientApp {
            name: "claude-code",
            version: "2.0.31",
            user_agent: "claude-code/2.0.31 (cli)",
            oauth_client_id: "mcp-client-claude-code",
        },
        ClientApp {
            name: "cursor",
            version: "1.7.2",
            user_agent: "Cursor/1.7.2 (darwin arm64)",
            oauth_client_id: "mcp-client-cursor",
        },
        ClientApp {
            name: "Visual Studio Code",
            version: "1.106.0",
            user_agent: "vscode/1.106.0 (linux x64)",
            oauth_client_id: "mcp-client-vscode",
        },
        ClientApp {
            name: "support-agent",
            version: "0.9.0",
            user_agent: "support-agent/0.9.0 python-httpx/0.28",
            oauth_client_id: "svc-support-agent",
        },
    ]
}

/// A person (or service identity) using MCP through one device.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub subject: String,
    pub address: String,
    pub client: ClientApp,
    /// Servers this user works with; most people use a few.
    pub servers: Vec<usize>,
}

const FIRST_NAMES: &[&str] = &[
    "alice", "bob", "carol", "dan", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "victor", "walter", "yuki",
];

pub fn make_users(rng: &mut impl Rng, count: usize, server_count: usize, clients: &[ClientApp]) -> Vec<User> {
    (0..count)
        .map(|i| {
            let name = format!("{}.{}", FIRST_NAMES[i % FIRST_NAMES.len()], i / FIRST_NAMES.len() + 1);
            let mut servers: Vec<usize> = (0..server_count).collect();
            // Everybody has the filesystem server; each person uses 2 to 4 others.
            let keep = rng.random_range(2..=4usize.min(server_count - 1));
            let mut others: Vec<usize> = servers.split_off(1);
            others.sort_by_key(|_| rng.random::<u32>());
            servers.extend(others.into_iter().take(keep));
            User {
                subject: format!("00u{:016x}", rng.random::<u64>()),
                id: format!("{name}@corp.example.com"),
                address: format!("10.{}.{}.{}", 20 + i / 62_500, (i / 250) % 250, i % 250 + 2),
                client: clients.choose(rng).expect("there are client apps").clone(),
                servers,
            }
        })
        .collect()
}

pub const REPOS: &[&str] = &["payments-api", "web-frontend", "infra", "data-pipeline", "mobile-app", "docs"];
pub const SOURCE_FILES: &[&str] = &[
    "src/main.rs",
    "src/lib.rs",
    "README.md",
    "Cargo.toml",
    "src/handlers/orders.py",
    "package.json",
    "docs/architecture.md",
    "tests/test_api.py",
    "src/components/Cart.tsx",
    "Makefile",
];
pub const CHANNELS: &[&str] = &["C024BE91L", "C02QF7XK3", "C05ENG0PS", "C07RELEASE"];
pub const TABLES: &[&str] = &["orders", "customers_daily", "events_2026", "invoices", "sessions"];
pub const SITES: &[&str] = &[
    "https://docs.rs/tokio/latest/tokio/",
    "https://developer.mozilla.org/en-US/docs/Web/HTTP",
    "https://www.rfc-editor.org/rfc/rfc9110",
    "https://pkg.go.dev/net/http",
    "https://doc.rust-lang.org/std/",
    "https://kubernetes.io/docs/concepts/",
];
