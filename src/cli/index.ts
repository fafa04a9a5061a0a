import { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerChat } from './chat.js';
import { registerConfig } from './config.js';
import { registerDevices } from './devices.js';
import { registerEnv } from './env.js';
import { registerGenerate } from './generate.js';
import { registerGrid } from './grid.js';
import { registerMtbench } from './mtbench.js';
import { registerReport } from './report.js';
import { registerServe } from './serve.js';
import { registerTokenize } from './tokenize.js';
import { registerTrain } from './train.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('polytune')
    .description('Instruction-tune multilingual Llama-2-style models')
    .showHelpAfterError();
  registerTrain(program);
  registerConfig(program);
  registerTokenize(program);
  registerGrid(program);
  registerBench(program);
  registerGenerate(program);
  registerChat(program);
  registerServe(program);
  registerMtbench(program);
  registerReport(program);
  registerEnv(program);
  registerDevices(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
