#!/usr/bin/env node
// A stdio MCP server that starts, lists one tool ("wobbly") and exits with
// status 7 shortly after, every time: a child that keeps crashing once it
// was ready. Each start appends "start PID" to the file named by its
// argument, and each exit "exit PID", so a test can count them.
//
//   node tests/e2e/crashing_server.mjs STARTS_FILE

import { appendFileSync } from 'node:fs';

import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { CallToolRequestSchema, ListToolsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

appendFileSync(process.argv[2], `start ${process.pid}\n`);
const server = new Server({ name: 'crashing', version: '1.0.0' }, { capabilities: { tools: {} } });
server.setRequestHandler(ListToolsRequestSchema, async () => {
  setTimeout(() => {
    appendFileSync(process.argv[2], `exit ${process.pid}\n`);
    process.exit(7);
  }, 150);
  return { tools: [{ name: 'wobbly', description: 'Answers, if the server lives long enough.', inputSchema: { type: 'object' } }] };
});
server.setRequestHandler(CallToolRequestSchema, async () => ({ content: [{ type: 'text', text: 'still here' }] }));
await server.connect(new StdioServerTransport());
