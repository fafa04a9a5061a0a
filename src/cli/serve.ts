import { Command, Option } from 'commander';
import { startServer } from '../serve/index.js';
import { addModelOptions, generationDevice, int, type ModelCliOptions } from './generate.js';

interface ServeCliOptions extends ModelCliOptions {
  host: string;
  port: number;
  batch: number;
  maxLen?: number;
  maxNewTokens?: number;
  maxQueue?: number;
  modelId?: string;
  quiet: boolean;
}

export function registerServe(program: Command): void {
  const cmd = program
    .command('serve')
    .description('OpenAI-compatible HTTP server (POST /v1/chat/completions with streaming, GET /v1/models)');
  addModelOptions(cmd);
  cmd
    .option('--host <host>', 'address to listen on (loopback by default)', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', int('--port'), 8000)
    .option('--batch <n>', 'concurrent requests decoded together', int('--batch'), 8)
    .addOption(new Option('--max-len <n>', 'context per request (default: max_position_embeddings, at most 4096)').argParser(int('--max-len')))
    .addOption(new Option('--max-new-tokens <n>', "cap on each completion's length, whatever the request asks").argParser(int('--max-new-tokens')))
    .addOption(new Option('--max-queue <n>', 'requests that may wait for a slot (default 4 x --batch); more get 429').argParser(int('--max-queue')))
    .option('--model-id <name>', 'model id reported by /v1/models (default: the folder name)')
    .option('--quiet', 'no request log', false)
    .action(async (o: ServeCliOptions) => {
      const log = (l: string) => process.stderr.write(`${new Date().toISOString()} ${l}\n`);
      const s = await startServer({ model: o.model, host: o.host, port: o.port, log: o.quiet ? undefined : log, batch: o.batch, maxLen: o.maxLen, maxNewTokens: o.maxNewTokens, maxQueue: o.maxQueue, dtype: o.dtype, template: o.template, modelId: o.modelId, device: generationDevice(o) });
      // The base URL alone on stdout, for scripts (and the tests) to pick up.
      process.stdout.write(`${s.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void s.close().then(resolve);
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
