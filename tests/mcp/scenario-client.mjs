// An MCP client on the official TypeScript SDK (v2) that plays a list of actions against a
// stdio or Streamable HTTP server and prints each answer as a JSON line.
//   node scenario-client.mjs REVISION ACTIONS -- COMMAND [ARGS…]
//   node scenario-client.mjs REVISION ACTIONS --url URL
// REVISION: "legacy" (the 2025-11-25 `initialize` handshake) or a revision to pin
// ("2026-07-28": `server/discover`, no session, identity in `_meta`).
// ACTIONS: JSON list of {"list": true} or {"call": NAME, "arguments": {…}}.
// The server command gets this process's environment (USER, MCP_*), which the SDK's
// transport would otherwise reduce to a default set.
import { Client } from '@modelcontextprotocol/client';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const args = process.argv.slice(2);
if (args.length < 4 || !['--', '--url'].includes(args[2])) {
  console.error('usage: scenario-client.mjs REVISION ACTIONS (-- COMMAND [ARGS…] | --url URL)');
  process.exit(2);
}
const [revision, actionsJson] = args;
const mode = revision === 'legacy' ? 'legacy' : { pin: revision };
const client = new Client({ name: 'scenario-client', version: '1.0.0' }, { versionNegotiation: { mode } });
const transport =
  args[2] === '--url'
    ? new StreamableHTTPClientTransport(new URL(args[3]))
    : new StdioClientTransport({ command: args[3], args: args.slice(4), env: { ...process.env } });
await client.connect(transport);
for (const action of JSON.parse(actionsJson)) {
  const answer = action.list
    ? await client.listTools()
    : await client.callTool({ name: action.call, arguments: action.arguments ?? {} });
  console.log(JSON.stringify(answer));
}
await client.close();
