//! A minimal stdio MCP server that answers every request at once: the upstream of
//! `mcpsiem bench proxy`, so the figures measure the proxy and not a server's work.

use std::io::{BufRead, Write};

use serde_json::{Value, json};

/// Serves stdin/stdout until stdin closes.
pub fn run() -> std::io::Result<()> {
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let line = line?;
        let Ok(message) = serde_json::from_str::<Value>(&line) else { continue };
        let (Some(id), Some(method)) = (message.get("id"), message.get("method").and_then(Value::as_str)) else {
            continue; // notifications and responses need no answer
        };
        let result = match method {
            "initialize" => json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                "serverInfo": {"name": "mcpsiem-echo", "version": env!("CARGO_PKG_VERSION")}}),
            "tools/list" => json!({"tools": [{"name": "echo", "description": "Echoes its message",
                "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}}}]}),
            "tools/call" => {
                let text = message.pointer("/params/arguments/message").and_then(Value::as_str).unwrap_or("");
                json!({"content": [{"type": "text", "text": text}]})
            }
            _ => json!({}),
        };
        serde_json::to_writer(&mut stdout, &json!({"jsonrpc": "2.0", "id": id, "result": result}))?;
        stdout.write_all(b"\n")?;
        stdout.flush()?;
    }
    Ok(())
}
