#!/usr/bin/env node
// A stdio MCP server with two resources (note://a, note://b) whose text
// names their version, and tools that change a version: `bump` and tells
// (notifications/resources/updated for the URI, sent before the tool's
// answer), `bump_quietly` without telling, and `relist`, which sends
// notifications/resources/list_changed. The gateway test uses it to show
// what of a resource read the gateway keeps, and when it drops it.
//
//   node tests/e2e/resource_server.mjs

import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import {
  CallToolRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

const versions = { 'note://a': 1, 'note://b': 1 };
const server = new Server({ name: 'notes', version: '1.0.0' }, { capabilities: { resources: { listChanged: true }, tools: {} } });
server.setRequestHandler(ListResourcesRequestSchema, async () => ({
  resources: Object.keys(versions).map((uri) => ({ uri, name: uri.slice(7), mimeType: 'text/plain' })),
}));
server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
  const { uri } = req.params;
  if (!(uri in versions)) throw new Error(`no resource ${uri}`);
  return { contents: [{ uri, mimeType: 'text/plain', text: `${uri} v${versions[uri]}` }] };
});
const uriArg = { type: 'object', properties: { uri: { type: 'string' } }, required: ['uri'] };
server.setRequestHandler(ListToolsRequestSchema, async () => ({
  tools: [
    { name: 'bump', description: 'Next version of a note, and says so.', inputSchema: uriArg },
    { name: 'bump_quietly', description: 'Next version of a note, silently.', inputSchema: uriArg },
    { name: 'relist', description: 'Says the resource list changed.', inputSchema: { type: 'object' } },
  ],
}));
server.setRequestHandler(CallToolRequestSchema, async (req) => {
  const { name, arguments: args = {} } = req.params;
  if (name === 'relist') {
    await server.notification({ method: 'notifications/resources/list_changed' });
    return { content: [{ type: 'text', text: 'relisted' }] };
  }
  const v = ++versions[args.uri];
  if (name === 'bump') await server.notification({ method: 'notifications/resources/updated', params: { uri: args.uri } });
  return { content: [{ type: 'text', text: `${args.uri} v${v}` }] };
});
await server.connect(new StdioServerTransport());
