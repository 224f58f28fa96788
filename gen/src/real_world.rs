//! Servers whose tool names and shapes come from public MCP servers, for the `real-world`
//! traffic profile: arbitrary tool names (`browser_navigate`, `resolve-library-id`,
//! `sequentialthinking`), the same tool name on two approved servers (`list_issues`,
//! `create_issue`), and descriptions in the imperative voice real servers use ("You MUST
//! call…"), so a rule that mistakes ordinary tool catalogues for attacks shows up as noise.
//!
//! Names are the servers' published tool names; descriptions are short paraphrases.

use super::world::{ServerSpec, ToolRole, ToolSpec, Transport};

/// A benign call of a real-world tool: its arguments (JSON) and a result.
pub struct ExampleCall {
    pub tool: &'static str,
    pub arguments: &'static str,
    pub result: &'static str,
}

macro_rules! tools {
    ($(($name:literal, $role:ident, $desc:literal, $schema:expr)),+ $(,)?) => {
        vec![$(ToolSpec { name: $name, description: $desc, input_schema: $schema, role: ToolRole::$role }),+]
    };
}

const OBJECT: &str = r#"{"type":"object","properties":{}}"#;

pub fn servers() -> Vec<ServerSpec> {
    vec![
        ServerSpec {
            name: "mcp-servers/everything",
            version: "2.0.0",
            transport: Transport::Stdio,
            location: "npx -y @modelcontextprotocol/server-everything",
            tools: tools![
                (
                    "echo",
                    Read,
                    "Echoes back the input",
                    r#"{"type":"object","properties":{"message":{"type":"string","description":"Message to echo"}},"required":["message"]}"#
                ),
                (
                    "add",
                    Read,
                    "Adds two numbers",
                    r#"{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}"#
                ),
                (
                    "longRunningOperation",
                    Read,
                    "Demonstrates a long running operation with progress updates",
                    r#"{"type":"object","properties":{"duration":{"type":"number"},"steps":{"type":"number"}}}"#
                ),
                ("getTinyImage", Read, "Returns the MCP_TINY_IMAGE", r#"{"type":"object","properties":{}}"#),
                (
                    "annotatedMessage",
                    Read,
                    "Demonstrates how annotations can be used to provide metadata about content",
                    r#"{"type":"object","properties":{"messageType":{"type":"string","enum":["error","success","debug"]},"includeImage":{"type":"boolean"}},"required":["messageType"]}"#
                ),
                (
                    "getResourceReference",
                    Read,
                    "Returns a resource reference that can be used by MCP clients",
                    r#"{"type":"object","properties":{"resourceId":{"type":"number","minimum":1,"maximum":100}},"required":["resourceId"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "github-mcp-server",
            version: "0.20.1",
            transport: Transport::Http,
            location: "https://api.githubcopilot.com/mcp/",
            tools: tools![
                (
                    "get_me",
                    Read,
                    "Get details of the authenticated GitHub user. Use this when a request is about the user's own profile for GitHub. Or when information is missing to build other tool calls.",
                    OBJECT
                ),
                (
                    "list_issues",
                    Search,
                    "List issues in a GitHub repository. For pagination, use the 'endCursor' from the previous response's 'pageInfo' in the 'after' parameter.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"state":{"type":"string","enum":["OPEN","CLOSED"]},"after":{"type":"string"}},"required":["owner","repo"]}"#
                ),
                (
                    "search_code",
                    Search,
                    "Fast and precise code search across ALL GitHub repositories using GitHub's native search engine. Best for finding exact symbols, functions, classes, or specific code patterns.",
                    r#"{"type":"object","properties":{"query":{"type":"string"},"perPage":{"type":"number"}},"required":["query"]}"#
                ),
                (
                    "pull_request_read",
                    Read,
                    "Get information on a specific pull request in GitHub repository.",
                    r#"{"type":"object","properties":{"method":{"type":"string","enum":["get","get_diff","get_status","get_files"]},"owner":{"type":"string"},"repo":{"type":"string"},"pullNumber":{"type":"number"}},"required":["method","owner","repo","pullNumber"]}"#
                ),
                (
                    "add_issue_comment",
                    PublicSink,
                    "Add a comment to a specific issue in a GitHub repository. Use this tool to add comments to pull requests as well (in this case pass pull request number as issue_number), but only if user is not asking specifically to add review comments.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"issue_number":{"type":"number"},"body":{"type":"string"}},"required":["owner","repo","issue_number","body"]}"#
                ),
                (
                    "create_issue",
                    PublicSink,
                    "Create a new issue in a GitHub repository.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"title":{"type":"string"},"body":{"type":"string"}},"required":["owner","repo","title"]}"#
                ),
                (
                    "merge_pull_request",
                    Write,
                    "Merge a pull request in a GitHub repository.",
                    r#"{"type":"object","properties":{"owner":{"type":"string"},"repo":{"type":"string"},"pullNumber":{"type":"number"},"merge_method":{"type":"string"}},"required":["owner","repo","pullNumber"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "Playwright",
            version: "0.0.41",
            transport: Transport::Stdio,
            location: "npx @playwright/mcp@latest --headless",
            tools: tools![
                (
                    "browser_navigate",
                    Read,
                    "Navigate to a URL",
                    r#"{"type":"object","properties":{"url":{"type":"string","description":"The URL to navigate to"}},"required":["url"]}"#
                ),
                (
                    "browser_snapshot",
                    Read,
                    "Capture accessibility snapshot of the current page, this is better than screenshot",
                    OBJECT
                ),
                (
                    "browser_click",
                    Write,
                    "Perform click on a web page",
                    r#"{"type":"object","properties":{"element":{"type":"string","description":"Human-readable element description used to obtain permission to interact with the element"},"ref":{"type":"string","description":"Exact target element reference from the page snapshot"}},"required":["element","ref"]}"#
                ),
                (
                    "browser_type",
                    Write,
                    "Type text into editable element",
                    r#"{"type":"object","properties":{"element":{"type":"string"},"ref":{"type":"string"},"text":{"type":"string"},"submit":{"type":"boolean"}},"required":["element","ref","text"]}"#
                ),
                (
                    "browser_take_screenshot",
                    Read,
                    "Take a screenshot of the current page. You can't perform actions based on the screenshot, use browser_snapshot for actions.",
                    r#"{"type":"object","properties":{"type":{"type":"string","enum":["png","jpeg"]},"fullPage":{"type":"boolean"}}}"#
                ),
                ("browser_close", Write, "Close the page", OBJECT),
            ],
        },
        ServerSpec {
            name: "memory-server",
            version: "0.6.3",
            transport: Transport::Stdio,
            location: "npx -y @modelcontextprotocol/server-memory",
            tools: tools![
                (
                    "create_entities",
                    Write,
                    "Create multiple new entities in the knowledge graph",
                    r#"{"type":"object","properties":{"entities":{"type":"array","items":{"type":"object"}}},"required":["entities"]}"#
                ),
                (
                    "add_observations",
                    Write,
                    "Add new observations to existing entities in the knowledge graph",
                    r#"{"type":"object","properties":{"observations":{"type":"array","items":{"type":"object"}}},"required":["observations"]}"#
                ),
                ("read_graph", Read, "Read the entire knowledge graph", OBJECT),
                (
                    "search_nodes",
                    Search,
                    "Search for nodes in the knowledge graph based on a query",
                    r#"{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}"#
                ),
                (
                    "delete_entities",
                    Destructive,
                    "Delete multiple entities and their associated relations from the knowledge graph",
                    r#"{"type":"object","properties":{"entityNames":{"type":"array","items":{"type":"string"}}},"required":["entityNames"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "mcp-git",
            version: "1.21.0",
            transport: Transport::Stdio,
            location: "uvx mcp-server-git --repository /home/dev/projects/infra",
            tools: tools![
                (
                    "git_status",
                    Read,
                    "Shows the working tree status",
                    r#"{"type":"object","properties":{"repo_path":{"type":"string"}},"required":["repo_path"]}"#
                ),
                (
                    "git_diff_unstaged",
                    Read,
                    "Shows changes in the working directory that are not yet staged",
                    r#"{"type":"object","properties":{"repo_path":{"type":"string"},"context_lines":{"type":"integer"}},"required":["repo_path"]}"#
                ),
                (
                    "git_log",
                    Read,
                    "Shows the commit logs",
                    r#"{"type":"object","properties":{"repo_path":{"type":"string"},"max_count":{"type":"integer"}},"required":["repo_path"]}"#
                ),
                (
                    "git_commit",
                    Write,
                    "Records changes to the repository",
                    r#"{"type":"object","properties":{"repo_path":{"type":"string"},"message":{"type":"string"}},"required":["repo_path","message"]}"#
                ),
                (
                    "git_checkout",
                    Write,
                    "Switches branches",
                    r#"{"type":"object","properties":{"repo_path":{"type":"string"},"branch_name":{"type":"string"}},"required":["repo_path","branch_name"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "mcp-time",
            version: "1.21.0",
            transport: Transport::Stdio,
            location: "uvx mcp-server-time --local-timezone=Europe/Berlin",
            tools: tools![
                (
                    "get_current_time",
                    Read,
                    "Get current time in a specific timezones",
                    r#"{"type":"object","properties":{"timezone":{"type":"string","description":"IANA timezone name (e.g., 'America/New_York', 'Europe/London'). Use 'Europe/Berlin' as local timezone if no timezone provided by the user."}},"required":["timezone"]}"#
                ),
                (
                    "convert_time",
                    Read,
                    "Convert time between timezones",
                    r#"{"type":"object","properties":{"source_timezone":{"type":"string"},"time":{"type":"string"},"target_timezone":{"type":"string"}},"required":["source_timezone","time","target_timezone"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "sequential-thinking-server",
            version: "0.2.0",
            transport: Transport::Stdio,
            location: "npx -y @modelcontextprotocol/server-sequential-thinking",
            tools: tools![(
                "sequentialthinking",
                Read,
                "A detailed tool for dynamic and reflective problem-solving through thoughts. Each thought can build on, question, or revise previous insights as understanding deepens.\n\nWhen to use this tool:\n- Breaking down complex problems into steps\n- Planning and design with room for revision\n\nYou should:\n1. Start with an initial estimate of needed thoughts, but be ready to adjust\n2. Feel free to question or revise previous thoughts\n3. Don't hesitate to add more thoughts if needed, even at the \"end\"\n4. Only set next_thought_needed to false when truly done and a satisfactory answer is reached",
                r#"{"type":"object","properties":{"thought":{"type":"string"},"nextThoughtNeeded":{"type":"boolean"},"thoughtNumber":{"type":"integer"},"totalThoughts":{"type":"integer"}},"required":["thought","nextThoughtNeeded","thoughtNumber","totalThoughts"]}"#
            ),],
        },
        ServerSpec {
            name: "Context7",
            version: "1.0.20",
            transport: Transport::Http,
            location: "https://mcp.context7.com/mcp",
            tools: tools![
                (
                    "resolve-library-id",
                    Search,
                    "Resolves a package/product name to a Context7-compatible library ID and returns a list of matching libraries.\n\nYou MUST call this function before 'get-library-docs' to obtain a valid Context7-compatible library ID UNLESS the user explicitly provides a library ID in the format '/org/project' or '/org/project/version' in their query.",
                    r#"{"type":"object","properties":{"libraryName":{"type":"string"}},"required":["libraryName"]}"#
                ),
                (
                    "get-library-docs",
                    Read,
                    "Fetches up-to-date documentation for a library. You must call 'resolve-library-id' first to obtain the exact Context7-compatible library ID required to use this tool, UNLESS the user explicitly provides a library ID in the format '/org/project'.",
                    r#"{"type":"object","properties":{"context7CompatibleLibraryID":{"type":"string"},"topic":{"type":"string"},"tokens":{"type":"number"}},"required":["context7CompatibleLibraryID"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "Sentry",
            version: "0.18.0",
            transport: Transport::Http,
            location: "https://mcp.sentry.dev/mcp",
            tools: tools![
                (
                    "whoami",
                    Read,
                    "Identify the authenticated user in Sentry. Use this tool when you need to know the current user's name or email address.",
                    OBJECT
                ),
                (
                    "find_issues",
                    Search,
                    "Find issues in Sentry. Use this tool when you need to view the most recent issues or find issues matching a query.",
                    r#"{"type":"object","properties":{"organizationSlug":{"type":"string"},"query":{"type":"string"}},"required":["organizationSlug"]}"#
                ),
                (
                    "get_issue_details",
                    Read,
                    "Get detailed information about a specific Sentry issue by ID. Use this tool when you need to investigate a specific issue, including its stacktrace.",
                    r#"{"type":"object","properties":{"organizationSlug":{"type":"string"},"issueId":{"type":"string"}},"required":["organizationSlug","issueId"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "Notion",
            version: "1.0.1",
            transport: Transport::Http,
            location: "https://mcp.notion.com/mcp",
            tools: tools![
                (
                    "notion-search",
                    Search,
                    "Perform a search over your entire Notion workspace and connected sources. Use this before fetching a page when you only know its title.",
                    r#"{"type":"object","properties":{"query":{"type":"string"}},"required":["query"]}"#
                ),
                (
                    "notion-fetch",
                    Read,
                    "Retrieves details about a Notion entity by its URL or ID.",
                    r#"{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}"#
                ),
                (
                    "notion-create-pages",
                    Write,
                    "Creates one or more Notion pages with the specified properties and content.",
                    r#"{"type":"object","properties":{"pages":{"type":"array","items":{"type":"object"}},"parent":{"type":"object"}},"required":["pages"]}"#
                ),
            ],
        },
        ServerSpec {
            name: "linear",
            version: "1.0.0",
            transport: Transport::Http,
            location: "https://mcp.linear.app/mcp",
            tools: tools![
                (
                    "list_issues",
                    Search,
                    "List issues in the user's Linear workspace",
                    r#"{"type":"object","properties":{"query":{"type":"string"},"limit":{"type":"number"}}}"#
                ),
                (
                    "create_issue",
                    Write,
                    "Create a new Linear issue",
                    r#"{"type":"object","properties":{"title":{"type":"string"},"team":{"type":"string"},"description":{"type":"string"}},"required":["title","team"]}"#
                ),
                (
                    "get_issue",
                    Read,
                    "Retrieve a Linear issue details by ID, including attachments",
                    r#"{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}"#
                ),
            ],
        },
    ]
}

/// Example benign calls, by tool name (one per tool of `servers`; a name two servers share
/// uses one example for both).
pub const CALLS: &[ExampleCall] = &[
    ExampleCall {
        tool: "echo",
        arguments: r#"{"message":"hello from the inspector"}"#,
        result: "Echo: hello from the inspector",
    },
    ExampleCall { tool: "add", arguments: r#"{"a":17,"b":25}"#, result: "The sum of 17 and 25 is 42." },
    ExampleCall {
        tool: "longRunningOperation",
        arguments: r#"{"duration":10,"steps":5}"#,
        result: "Long running operation completed. Duration: 10 seconds, Steps: 5.",
    },
    ExampleCall {
        tool: "getTinyImage",
        arguments: "{}",
        result: "This is a tiny image:\n[image/png 86 bytes]\nThe image above is the MCP tiny image.",
    },
    ExampleCall {
        tool: "annotatedMessage",
        arguments: r#"{"messageType":"success","includeImage":false}"#,
        result: "Operation completed successfully",
    },
    ExampleCall {
        tool: "getResourceReference",
        arguments: r#"{"resourceId":7}"#,
        result: "Returning resource reference for Resource 7:\n[resource test://static/resource/7]",
    },
    ExampleCall {
        tool: "get_me",
        arguments: "{}",
        result: r#"{"login":"octocat","id":583231,"name":"The Octocat","company":"@corp","public_repos":8}"#,
    },
    ExampleCall {
        tool: "list_issues",
        arguments: r#"{"owner":"corp","repo":"web-frontend","state":"OPEN"}"#,
        result: r#"{"issues":[{"number":412,"title":"Cart total rounds the wrong way","state":"OPEN"},{"number":409,"title":"Dark mode contrast on settings page","state":"OPEN"}],"pageInfo":{"hasNextPage":false}}"#,
    },
    ExampleCall {
        tool: "search_code",
        arguments: r#"{"query":"repo:corp/payments-api retry_with_backoff"}"#,
        result: r#"{"total_count":2,"items":[{"path":"src/client.rs"},{"path":"src/retry.rs"}]}"#,
    },
    ExampleCall {
        tool: "pull_request_read",
        arguments: r#"{"method":"get","owner":"corp","repo":"infra","pullNumber":318}"#,
        result: r#"{"number":318,"title":"Bump terraform provider","state":"open","mergeable":true}"#,
    },
    ExampleCall {
        tool: "add_issue_comment",
        arguments: r#"{"owner":"corp","repo":"web-frontend","issue_number":412,"body":"Reproduced on main; the fix is in #415."}"#,
        result: r#"{"id":2291847,"html_url":"https://github.com/corp/web-frontend/issues/412#issuecomment-2291847"}"#,
    },
    ExampleCall {
        tool: "create_issue",
        arguments: r#"{"owner":"corp","repo":"infra","title":"Rotate the staging TLS certificate","team":"OPS"}"#,
        result: r#"{"number":77,"state":"open"}"#,
    },
    ExampleCall {
        tool: "merge_pull_request",
        arguments: r#"{"owner":"corp","repo":"infra","pullNumber":318,"merge_method":"squash"}"#,
        result: r#"{"merged":true,"message":"Pull Request successfully merged"}"#,
    },
    ExampleCall {
        tool: "browser_navigate",
        arguments: r#"{"url":"https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/429"}"#,
        result: "- Ran Playwright code:\n```js\nawait page.goto('https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/429');\n```\n- Page URL: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/429\n- Page Title: 429 Too Many Requests - HTTP | MDN",
    },
    ExampleCall {
        tool: "browser_snapshot",
        arguments: "{}",
        result: "- Page Snapshot:\n```yaml\n- banner:\n  - link \"MDN Web Docs\" [ref=e4]\n- main:\n  - heading \"429 Too Many Requests\" [level=1] [ref=e21]\n  - paragraph: The HTTP 429 Too Many Requests client error response status code indicates the user has sent too many requests in a given amount of time.\n```",
    },
    ExampleCall {
        tool: "browser_click",
        arguments: r#"{"element":"Search button","ref":"e12"}"#,
        result: "- Ran Playwright code:\n```js\nawait page.getByRole('button', { name: 'Search' }).click();\n```",
    },
    ExampleCall {
        tool: "browser_type",
        arguments: r#"{"element":"Search field","ref":"e13","text":"retry-after header","submit":true}"#,
        result: "- Ran Playwright code:\n```js\nawait page.getByRole('searchbox').fill('retry-after header');\n```",
    },
    ExampleCall {
        tool: "browser_take_screenshot",
        arguments: r#"{"type":"png"}"#,
        result: "Took the viewport screenshot and saved it as /tmp/playwright-mcp-output/page-2026-11-02.png",
    },
    ExampleCall {
        tool: "browser_close",
        arguments: "{}",
        result: "- Ran Playwright code:\n```js\nawait page.close()\n```",
    },
    ExampleCall {
        tool: "create_entities",
        arguments: r#"{"entities":[{"name":"payments-api","entityType":"service","observations":["owned by team checkout"]}]}"#,
        result: r#"[{"name":"payments-api","entityType":"service","observations":["owned by team checkout"]}]"#,
    },
    ExampleCall {
        tool: "add_observations",
        arguments: r#"{"observations":[{"entityName":"payments-api","contents":["deploys on Tuesdays"]}]}"#,
        result: r#"[{"entityName":"payments-api","addedObservations":["deploys on Tuesdays"]}]"#,
    },
    ExampleCall {
        tool: "read_graph",
        arguments: "{}",
        result: r#"{"entities":[{"name":"payments-api","entityType":"service"}],"relations":[]}"#,
    },
    ExampleCall {
        tool: "search_nodes",
        arguments: r#"{"query":"checkout"}"#,
        result: r#"{"entities":[{"name":"payments-api","entityType":"service"}],"relations":[]}"#,
    },
    ExampleCall {
        tool: "delete_entities",
        arguments: r#"{"entityNames":["old-staging-notes"]}"#,
        result: "Entities deleted successfully",
    },
    ExampleCall {
        tool: "git_status",
        arguments: r#"{"repo_path":"/home/dev/projects/infra"}"#,
        result: "Repository status:\nOn branch main\nYour branch is up to date with 'origin/main'.\n\nnothing to commit, working tree clean",
    },
    ExampleCall {
        tool: "git_diff_unstaged",
        arguments: r#"{"repo_path":"/home/dev/projects/infra"}"#,
        result: "Unstaged changes:\ndiff --git a/main.tf b/main.tf\n@@ -12,7 +12,7 @@\n-  instance_type = \"t3.small\"\n+  instance_type = \"t3.medium\"",
    },
    ExampleCall {
        tool: "git_log",
        arguments: r#"{"repo_path":"/home/dev/projects/infra","max_count":3}"#,
        result: "Commit history:\nCommit: 'a1b2c3d'\nAuthor: Dev <dev@corp.example.com>\nMessage: 'Bump provider'",
    },
    ExampleCall {
        tool: "git_commit",
        arguments: r#"{"repo_path":"/home/dev/projects/infra","message":"Size up the staging runner"}"#,
        result: "Changes committed successfully with hash 9f8e7d6c",
    },
    ExampleCall {
        tool: "git_checkout",
        arguments: r#"{"repo_path":"/home/dev/projects/infra","branch_name":"feature/runner-size"}"#,
        result: "Switched to branch 'feature/runner-size'",
    },
    ExampleCall {
        tool: "get_current_time",
        arguments: r#"{"timezone":"America/New_York"}"#,
        result: r#"{"timezone":"America/New_York","datetime":"2026-11-02T09:14:07-05:00","is_dst":false}"#,
    },
    ExampleCall {
        tool: "convert_time",
        arguments: r#"{"source_timezone":"Europe/Berlin","time":"16:30","target_timezone":"Asia/Tokyo"}"#,
        result: r#"{"source":{"timezone":"Europe/Berlin","datetime":"2026-11-02T16:30:00+01:00"},"target":{"timezone":"Asia/Tokyo","datetime":"2026-11-03T00:30:00+09:00"},"time_difference":"+8.0h"}"#,
    },
    ExampleCall {
        tool: "sequentialthinking",
        arguments: r#"{"thought":"First list which services call the payments API, then check their retry settings.","nextThoughtNeeded":true,"thoughtNumber":1,"totalThoughts":4}"#,
        result: r#"{"thoughtNumber":1,"totalThoughts":4,"nextThoughtNeeded":true,"branches":[],"thoughtHistoryLength":1}"#,
    },
    ExampleCall {
        tool: "resolve-library-id",
        arguments: r#"{"libraryName":"tokio"}"#,
        result: "Available Libraries (top matches):\n\n- Title: Tokio\n- Context7-compatible library ID: /tokio-rs/tokio\n- Description: A runtime for writing reliable asynchronous applications with Rust.\n- Code Snippets: 1043\n- Trust Score: 9.1",
    },
    ExampleCall {
        tool: "get-library-docs",
        arguments: r#"{"context7CompatibleLibraryID":"/tokio-rs/tokio","topic":"select","tokens":5000}"#,
        result: "TITLE: Waiting on multiple concurrent branches\nDESCRIPTION: The tokio::select! macro allows waiting on multiple async computations and returns when a single computation completes.\nSOURCE: https://github.com/tokio-rs/tokio/blob/master/tokio/src/macros/select.rs\nLANGUAGE: rust\nCODE:\n```\ntokio::select! {\n    v = rx1 => println!(\"got {:?}\", v),\n    v = rx2 => println!(\"got {:?}\", v),\n}\n```",
    },
    ExampleCall { tool: "whoami", arguments: "{}", result: "You are authenticated as Dev (dev@corp.example.com)." },
    ExampleCall {
        tool: "find_issues",
        arguments: r#"{"organizationSlug":"corp","query":"is:unresolved"}"#,
        result: "# Issues in **corp**\n\n## PAYMENTS-API-3F\n**Description**: TimeoutError: upstream took longer than 30s\n**Culprit**: src/client.rs in retry_with_backoff\n**First Seen**: 2026-11-01T08:02:11Z",
    },
    ExampleCall {
        tool: "get_issue_details",
        arguments: r#"{"organizationSlug":"corp","issueId":"PAYMENTS-API-3F"}"#,
        result: "# Issue PAYMENTS-API-3F in **corp**\n\n**Description**: TimeoutError: upstream took longer than 30s\n\n**Stacktrace:**\n```\nsrc/client.rs:88 in retry_with_backoff\nsrc/handlers/orders.rs:41 in submit\n```",
    },
    ExampleCall {
        tool: "notion-search",
        arguments: r#"{"query":"on-call handbook"}"#,
        result: r#"{"results":[{"id":"1f2e3d4c","title":"On-call handbook","url":"https://www.notion.so/corp/On-call-handbook-1f2e3d4c"}]}"#,
    },
    ExampleCall {
        tool: "notion-fetch",
        arguments: r#"{"id":"1f2e3d4c"}"#,
        result: "# On-call handbook\n\n1. Acknowledge the page within 5 minutes.\n2. Open an incident channel.\n3. Post updates every 30 minutes.",
    },
    ExampleCall {
        tool: "notion-create-pages",
        arguments: r#"{"pages":[{"properties":{"title":"Postmortem: checkout timeouts"}}]}"#,
        result: r#"{"pages":[{"id":"7a6b5c4d","url":"https://www.notion.so/corp/Postmortem-checkout-timeouts-7a6b5c4d"}]}"#,
    },
    ExampleCall {
        tool: "get_issue",
        arguments: r#"{"id":"OPS-231"}"#,
        result: r#"{"id":"OPS-231","title":"Runner out of disk","state":"In Progress","assignee":"dev"}"#,
    },
];

/// The example call of `tool`, if it is one of the real-world tools.
pub fn example_call(tool: &str) -> Option<&'static ExampleCall> {
    CALLS.iter().find(|c| c.tool == tool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_an_example_call_with_json_arguments_and_a_json_schema() {
        for server in servers() {
            for tool in &server.tools {
                let call = example_call(tool.name).unwrap_or_else(|| panic!("{} has no example", tool.name));
                serde_json::from_str::<serde_json::Value>(call.arguments).expect(tool.name);
                serde_json::from_str::<serde_json::Value>(tool.input_schema).expect(tool.name);
            }
        }
    }

    #[test]
    fn the_catalogue_shares_tool_names_across_servers_as_real_ones_do() {
        let servers = servers();
        let offering = |name: &str| servers.iter().filter(|s| s.tools.iter().any(|t| t.name == name)).count();
        assert_eq!(offering("list_issues"), 2);
        assert_eq!(offering("create_issue"), 2);
    }
}
