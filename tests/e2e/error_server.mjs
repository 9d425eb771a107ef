#!/usr/bin/env node
// A stdio MCP server with one tool, `fail`, that answers every call with a
// JSON-RPC error (not an isError result) full of internal details: a file
// path and address in the message, a password in both the message and
// `data`, a stack trace in `data`, and `data.requiredCapabilities`, which
// MCP defines. Built on the official SDK's low-level Server, whose request
// handling answers a thrown McpError as a protocol-level error with its code,
// message and data. The hostile-callers test uses it to show what a gateway
// in production mode passes on of a service's error.
//
//   node tests/e2e/error_server.mjs

import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema, McpError } from '@modelcontextprotocol/sdk/types.js';

const failCode = -31999;
const failMessage = 'cannot open /srv/data/secret.db at 10.0.0.5:5432; password=hunter2';
const failData = {
  stack: 'Error at /srv/app/x.js:1',
  password: 'hunter2',
  requiredCapabilities: { sampling: {} },
};

const server = new Server({ name: 'error-server', version: '1.0.0' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [{ name: 'fail', description: 'Always fails with a JSON-RPC error.', inputSchema: { type: 'object' } }],
}));
server.setRequestHandler(CallToolRequestSchema, async () => {
  throw new McpError(failCode, failMessage, failData);
});
await server.connect(new StdioServerTransport());
