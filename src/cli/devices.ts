// `polytune devices`: what this build has (the CPU kernels' ISA path, CUDA linked or not, MPI) and
// what this machine has (GPUs through the CUDA runtime where the build links it; otherwise whether an
// NVIDIA driver is visible), so a CPU-only build on a GPU machine is said plainly.
import { Command } from 'commander';
import { existsSync, readdirSync } from 'node:fs';
import { native, type NativeAddon } from '../tensor/native.js';

export interface DevicesReport {
  build: { cpu: { isa: string; simd: string; threads: number; amx: boolean }; cuda: boolean; mpi: string | false };
  /** Devices this process can allocate on: 'cpu', then 'cuda:N' (CUDA builds only). */
  devices: string[];
  /** GPUs the NVIDIA driver lists (/proc/driver/nvidia/gpus), whatever the build: null without a driver. */
  driverGpus: number | null;
}

export function driverGpuCount(dir = '/proc/driver/nvidia/gpus'): number | null {
  if (!existsSync(dir)) return null;
  try {
    return readdirSync(dir).length;
  } catch {
    return null;
  }
}

export function devicesReport(addon: Pick<NativeAddon, 'buildInfo' | 'devices' | 'dist'> = native(), gpus = driverGpuCount()): DevicesReport {
  const b = addon.buildInfo();
  return {
    build: { cpu: { isa: b.isa, simd: b.simd, threads: b.threads, amx: b.amx }, cuda: b.cuda, mpi: addon.dist.built ? (addon.dist.library ?? 'yes') : false },
    devices: addon.devices(),
    driverGpus: gpus,
  };
}

export function devicesText(r: DevicesReport): string {
  const cudaDevices = r.devices.filter((d) => d !== 'cpu');
  const driver = r.driverGpus === null ? 'no NVIDIA driver visible' : `the NVIDIA driver lists ${r.driverGpus} GPU${r.driverGpus === 1 ? '' : 's'}`;
  const machine = r.build.cuda
    ? cudaDevices.length > 0
      ? `${cudaDevices.join(', ')} (CUDA runtime)`
      : `no GPU the CUDA runtime can use (${driver})`
    : `${driver}; this build is CPU-only, so it cannot use ${r.driverGpus ? 'them' : 'a GPU'}`;
  return [
    'build',
    `  CPU     ${r.build.cpu.isa} (${r.build.cpu.simd}), ${r.build.cpu.threads} threads${r.build.cpu.amx ? ', AMX' : ''}`,
    `  CUDA    ${r.build.cuda ? 'yes (linked)' : 'no (built without CUDA: rebuild with the CUDA toolkit and cuBLASLt, POLYTUNE_CUDA=ON)'}`,
    `  MPI     ${r.build.mpi === false ? 'no' : r.build.mpi}`,
    'machine',
    `  GPUs    ${machine}`,
    `devices   ${r.devices.join(', ')}   (train.device "auto" picks ${cudaDevices[0] ?? 'cpu'})`,
  ].join('\n');
}

export function registerDevices(program: Command): void {
  program
    .command('devices')
    .description('what this build has (CPU ISA path, CUDA, MPI) and what this machine has (GPUs), and the devices a run can use')
    .option('--json', 'one JSON object')
    .action((o: { json?: boolean }) => {
      const r = devicesReport();
      console.log(o.json ? JSON.stringify(r) : devicesText(r));
    });
}
