// The TypeScript SDK 1.x's own task client (`client.experimental.tasks`, the 2025-11-25 experimental tasks, SEP-1686)
// against seedance-mcp, unchanged: @modelcontextprotocol/sdk 1.32.2 from npm. tests/test_task_node_client.py drives
// it; each line it prints is JSON.
//
//   node legacy_task_client.mjs --url http://127.0.0.1:PORT/mcp [--token T] COMMAND ARG
//   node legacy_task_client.mjs --stdio "python -m seedance_mcp" COMMAND ARG
// Commands:
//   run PROMPT       callToolStream: taskCreated, taskStatus..., result (the SDK polls tasks/get, then tasks/result)
//   create PROMPT    a task-augmented tools/call only; prints the task
//   wait TASK_ID     getTask until terminal, then getTaskResult (after a restart, say)
//   cancel PROMPT    create, cancelTask, getTask until terminal
//   list             listTasks
//   dry PROMPT       callToolStream of a dry run (no job: a task born completed)
//   restart PROMPT   stdio: create on one server process, close it, finish on a new one
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CallToolResultSchema, CreateTaskResultSchema } from '@modelcontextprotocol/sdk/types.js';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const show = (event, value) => console.log(JSON.stringify({ event, value }));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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

function transport(opts) {
  if (opts.url) {
    const headers = opts.token ? { Authorization: `Bearer ${opts.token}` } : {};
    return new StreamableHTTPClientTransport(new URL(opts.url), { requestInit: { headers } });
  }
  const [command, ...args] = opts.stdio.split(' ');
  return new StdioClientTransport({ command, args, env: { ...process.env }, stderr: 'inherit' });
}

async function connect(opts) {
  const client = new Client({ name: 'seedance-legacy-task-client', version: '1.0.0' });
  await client.connect(transport(opts));
  show('capabilities', client.getServerCapabilities()?.tasks ?? null);
  const { tools } = await client.listTools(); // caches each tool's execution.taskSupport
  show('taskSupport', tools.find((t) => t.name === 'generate_video')?.execution ?? null);
  return client;
}

async function create(client, prompt) {
  const created = await client.request(
    { method: 'tools/call', params: { name: 'generate_video', arguments: { prompt } } },
    CreateTaskResultSchema,
    { task: { ttl: 3600000 } },
  );
  show('created', created.task);
  return created.task;
}

async function wait(client, taskId) {
  for (;;) {
    const task = await client.experimental.tasks.getTask(taskId);
    show('poll', task);
    if (TERMINAL.has(task.status)) return task;
    await sleep(Math.min(task.pollInterval ?? 1000, 1000));
  }
}

async function stream(client, args) {
  for await (const message of client.experimental.tasks.callToolStream({ name: 'generate_video', arguments: args })) {
    show(message.type, message.task ?? message.result ?? { message: message.error?.message });
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [command, arg] = opts.rest;
  if (command === 'restart') {
    const first = await connect(opts);
    const task = await create(first, arg);
    show('before', await first.experimental.tasks.getTask(task.taskId));
    await first.close();
    show('closed', {});
    const second = await connect(opts);
    show('final', await wait(second, task.taskId));
    show('result', await second.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema));
    await second.close();
    return;
  }
  const client = await connect(opts);
  try {
    switch (command) {
      case 'run':
        await stream(client, { prompt: arg });
        break;
      case 'dry':
        await stream(client, { prompt: arg, dry_run: true });
        break;
      case 'create':
        await create(client, arg);
        break;
      case 'wait':
        show('final', await wait(client, arg));
        show('result', await client.experimental.tasks.getTaskResult(arg, CallToolResultSchema));
        break;
      case 'cancel': {
        const task = await create(client, arg);
        show('cancel', await client.experimental.tasks.cancelTask(task.taskId));
        show('final', await wait(client, task.taskId));
        try {
          await client.experimental.tasks.cancelTask(task.taskId);
          show('cancel-again', {});
        } catch (e) {
          show('cancel-again', { code: e.code, message: e.message });
        }
        break;
      }
      case 'list':
        show('list', await client.experimental.tasks.listTasks());
        break;
      default:
        throw new Error(`unknown command ${command}`);
    }
  } finally {
    await client.close();
  }
}

main().catch((e) => {
  show('error', { code: e.code, message: e.message });
  console.error('FAILED:', e);
  process.exit(1);
});
