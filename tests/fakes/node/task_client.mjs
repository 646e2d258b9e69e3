// A SEP-2663 (io.modelcontextprotocol/tasks) client for the 2026-07-28 protocol on the TypeScript SDK v2 transports.
//
// No TypeScript SDK on npm has a client for this extension yet: @modelcontextprotocol/client 2.4.0's Client rejects
// a `resultType: "task"` answer (SdkError UNSUPPORTED_RESULT_TYPE; typescript-sdk#2189), and the 1.x
// `experimental.tasks` client speaks the 2025-11-25 tasks (SEP-1686), another wire. So this uses the SDK's
// transports (which derive MCP-Protocol-Version, Mcp-Method and Mcp-Name = params.taskId from each request's
// envelope) and sends the JSON-RPC itself. tests/test_task_node_client.py drives it; each line it prints is JSON.
//
//   node task_client.mjs --url http://127.0.0.1:PORT/mcp [--token T] COMMAND ARG
//   node task_client.mjs --stdio "python -m seedance_mcp" COMMAND ARG      (the server gets this process's env)
// Commands:
//   run PROMPT          generate_video as a task, tasks/get until terminal
//   create PROMPT       generate_video as a task; prints the task
//   wait TASK_ID        tasks/get until terminal (after a restart, say)
//   cancel PROMPT       create, tasks/cancel, tasks/get until terminal
//   plain PROMPT        without declaring the extension: a plain CallToolResult, and tasks/get -> -32021
//   restart PROMPT      stdio: create on one server process, close it, finish on a new one
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const TASKS = 'io.modelcontextprotocol/tasks';
const VERSION = '2026-07-28';
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

class TaskClient {
  constructor(makeTransport, { declareTasks = true } = {}) {
    this.makeTransport = makeTransport;
    this.declareTasks = declareTasks;
    this.nextId = 1;
    this.pending = new Map();
  }

  async connect() {
    this.transport = this.makeTransport();
    this.transport.onmessage = (msg) => {
      if (msg.id === undefined || !this.pending.has(msg.id)) return;
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error) reject(Object.assign(new Error(`${msg.error.code} ${msg.error.message}`), { rpc: msg.error }));
      else resolve(msg.result);
    };
    this.transport.onerror = () => {}; // a failed send rejects its request too
    await this.transport.start();
  }

  async close() {
    await this.transport?.close();
  }

  // Each 2026-07-28 request carries its own envelope: the extension is declared per request.
  request(method, params = {}) {
    const id = this.nextId++;
    const message = {
      jsonrpc: '2.0', id, method,
      params: {
        ...params,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': VERSION,
          'io.modelcontextprotocol/clientCapabilities': this.declareTasks ? { extensions: { [TASKS]: {} } } : {},
          'io.modelcontextprotocol/clientInfo': { name: 'seedance-node-task-client', version: '1.0.0' },
        },
      },
    };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.transport.send(message).catch(reject);
    });
  }

  create(prompt) { return this.request('tools/call', { name: 'generate_video', arguments: { prompt } }); }
  getTask(taskId) { return this.request('tasks/get', { taskId }); }
  cancelTask(taskId) { return this.request('tasks/cancel', { taskId }); }

  async waitTask(taskId) {
    for (;;) {
      const task = await this.getTask(taskId);
      show('poll', task);
      if (TERMINAL.has(task.status)) return task;
      await sleep(Math.min(task.pollIntervalMs ?? 1000, 1000));
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const show = (event, value) => console.log(JSON.stringify({ event, value }));

function parseArgs(argv) {
  const opts = { rest: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--url') opts.url = argv[++i];
    else if (argv[i] === '--stdio') opts.stdio = argv[++i];
    else if (argv[i] === '--token') opts.token = argv[++i];
    else opts.rest.push(argv[i]);
  }
  return opts;
}

function transportFactory(opts) {
  if (opts.url) {
    const headers = opts.token ? { Authorization: `Bearer ${opts.token}` } : {};
    return () => new StreamableHTTPClientTransport(new URL(opts.url), { requestInit: { headers } });
  }
  const [command, ...args] = opts.stdio.split(' ');
  return () => new StdioClientTransport({ command, args, env: { ...process.env }, stderr: 'inherit' });
}

async function created(client, prompt) {
  const task = await client.create(prompt);
  show('created', task);
  if (task.resultType !== 'task') throw new Error(`expected a task, got ${JSON.stringify(task)}`);
  return task;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [command, arg] = opts.rest;
  const factory = transportFactory(opts);
  if (command === 'restart') {
    const first = new TaskClient(factory);
    await first.connect();
    const task = await created(first, arg);
    show('before', await first.getTask(task.taskId));
    await first.close(); // the host closes the server process while the video renders
    show('closed', {});
    const second = new TaskClient(factory);
    await second.connect();
    show('final', await second.waitTask(task.taskId));
    await second.close();
    return;
  }
  const client = new TaskClient(factory, { declareTasks: command !== 'plain' });
  await client.connect();
  try {
    switch (command) {
      case 'run': {
        const task = await created(client, arg);
        show('final', await client.waitTask(task.taskId));
        break;
      }
      case 'create':
        await created(client, arg);
        break;
      case 'wait':
        show('final', await client.waitTask(arg));
        break;
      case 'cancel': {
        const task = await created(client, arg);
        show('cancel', await client.cancelTask(task.taskId));
        show('final', await client.waitTask(task.taskId));
        break;
      }
      case 'plain': {
        show('result', await client.create(arg));
        try {
          await client.getTask('job-x.y');
          show('get', {});
        } catch (e) {
          show('get', e.rpc);
        }
        break;
      }
      default:
        throw new Error(`unknown command ${command}`);
    }
  } finally {
    await client.close();
  }
}

main().catch((e) => {
  console.error('FAILED:', e.rpc ?? e);
  process.exit(1);
});
