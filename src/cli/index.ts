import { Command } from 'commander';
import { registerBench } from './bench.js';
import { registerChat } from './chat.js';
import { registerGenerate } from './generate.js';
import { registerServe } from './serve.js';
import { addMtbenchAnswer } from './mtbench-answer.js';
import { registerTokenize } from './tokenize.js';
import { registerTrain } from './train.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('polytune')
    .description('Instruction-tune multilingual Llama-2-style models')
    .showHelpAfterError();
  registerTrain(program);
  registerTokenize(program);
  registerBench(program);
  registerGenerate(program);
  const mt = program.command('mtbench').description('MT-Bench / MT-Bench-X: answer questions');
  addMtbenchAnswer(mt);
  registerServe(program);
  registerChat(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
