#!/usr/bin/env node
// A stdio MCP server with one prompt and no `completions` capability, built
// on the official SDK's low-level Server: it answers `completion/complete`
// with "method not found", as a server without completions does. The gateway
// test uses it to show that such a service is not asked to complete.
//
//   node tests/e2e/plain_prompt_server.mjs

import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { GetPromptRequestSchema, ListPromptsRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const server = new Server({ name: 'plain-prompts', version: '1.0.0' }, { capabilities: { prompts: {} } });
server.setRequestHandler(ListPromptsRequestSchema, async () => ({
  prompts: [{ name: 'greeting', description: 'Greets someone.', arguments: [{ name: 'who', required: true }] }],
}));
server.setRequestHandler(GetPromptRequestSchema, async (req) => ({
  messages: [{ role: 'user', content: { type: 'text', text: `Hello, ${req.params.arguments?.who}` } }],
}));
await server.connect(new StdioServerTransport());
