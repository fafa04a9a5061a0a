import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../tensor/root.js';
import { loadLlamaConfig, type LlamaConfig } from './config.js';

const presetDir = () => join(packageRoot(), 'models');

export function presetNames(): string[] {
  return readdirSync(presetDir()).filter((d) => existsSync(join(presetDir(), d, 'config.json'))).sort();
}

/** A preset name from models/, a directory holding config.json, or a config.json path. */
export function resolveConfig(nameOrPath: string): LlamaConfig {
  const preset = join(presetDir(), nameOrPath, 'config.json');
  if (existsSync(preset)) return loadLlamaConfig(preset);
  if (existsSync(join(nameOrPath, 'config.json'))) return loadLlamaConfig(join(nameOrPath, 'config.json'));
  if (existsSync(nameOrPath)) return loadLlamaConfig(nameOrPath);
  throw new Error(`model '${nameOrPath}' is neither a preset (${presetNames().join(', ')}) nor a config.json or a directory holding one`);
}
