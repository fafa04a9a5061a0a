import type { TextTokenizer } from '../types.js';
import type { ChatTemplate } from './chunks.js';
import { JinjaTemplate, loadTokenizerConfig } from './jinja.js';
import { Llama2Template } from './llama2.js';
import { TeukenTemplate } from './teuken.js';

export type { ChatTemplate, Chunk, RenderOptions } from './chunks.js';
export { chatTemplateField, llama2Jinja, specialTokenStrings, teukenJinja, trainedChatTemplate } from './export.js';
export { JinjaTemplate, loadTokenizerConfig, type JinjaTemplateSource } from './jinja.js';
export { Llama2Template } from './llama2.js';
export { TEUKEN_SYSTEM_MESSAGES, TeukenTemplate } from './teuken.js';

/** How a config names a template; see parseDataConfig. */
export type TemplateSpec =
  | { kind: 'teuken'; systemMessages?: Record<string, string> }
  | { kind: 'llama2'; systemMessages?: Record<string, string> }
  | { kind: 'jinja'; path: string };

export async function createTemplate(spec: TemplateSpec, tokenizer: TextTokenizer): Promise<ChatTemplate> {
  switch (spec.kind) {
    case 'teuken':
      return new TeukenTemplate(spec.systemMessages);
    case 'llama2':
      return new Llama2Template(spec.systemMessages);
    case 'jinja':
      return new JinjaTemplate(await loadTokenizerConfig(spec.path, tokenizer));
  }
}
