// train.device: which device a run trains on (generation's --device follows the same rules). `auto`
// takes the first GPU only where this build links CUDA and the machine has one; an explicit `cuda[:N]` that cannot be had fails before any data is
// loaded. Never a silent fallback: the run says what it picked and why.
import { native, type NativeAddon } from '../tensor/native.js';
import { parseDevice, type Device } from '../tensor/tensor.js';

export type DeviceSetting = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

export const DEVICE_SETTING = /^(auto|cpu|cuda|cuda:(0|[1-9][0-9]{0,2}))$/;

export interface PickedDevice {
  device: Device;
  /** One line for the run's log: the device and why it was picked. */
  why: string;
}

/**
 * `ranks` > 1: a data-parallel job over MPI, whose collectives take CPU tensors (NCCL is not built),
 * so `auto` stays on the CPU and an explicit GPU is refused before anything is loaded.
 */
export function pickTrainDevice(setting: DeviceSetting, addon: Pick<NativeAddon, 'buildInfo' | 'devices'> = native(), ranks = 1): PickedDevice {
  if (ranks > 1) {
    if (setting === 'auto' || setting === 'cpu') return { device: 'cpu', why: `device: cpu (train.device "${setting}": ${ranks} MPI ranks; data parallel runs on the CPU, NCCL is not built yet)` };
    throw new Error(`train.device is "${setting}" but this is a data-parallel job of ${ranks} MPI ranks, which runs on the CPU (NCCL is not built yet); set train.device to "cpu" or "auto", or run one process`);
  }
  return pickDevice(setting, 'train.device', addon);
}

/**
 * The same rules for any setting that names a device (train.device, generation's --device):
 * `what` is the setting's name as the user wrote it, for the log line and the errors.
 */
export function pickDevice(setting: DeviceSetting, what: string, addon: Pick<NativeAddon, 'buildInfo' | 'devices'> = native()): PickedDevice {
  const built = addon.buildInfo().cuda;
  const have = addon.devices().filter((d) => d !== 'cpu') as Device[];
  if (setting === 'cpu') return { device: 'cpu', why: `device: cpu (${what} is "cpu")` };
  if (setting === 'auto') {
    if (have.length > 0) return { device: have[0], why: `device: ${have[0]} (${what} "auto": this build has CUDA and the machine ${have.length} GPU${have.length > 1 ? 's' : ''})` };
    return {
      device: 'cpu',
      why: `device: cpu (${what} "auto": ${built ? 'this build has CUDA but the machine shows no GPU' : 'this addon was built without CUDA'})`,
    };
  }
  const want = parseDevice(setting);
  if (!built) {
    throw new Error(`${what} is "${setting}" but this addon was built without CUDA; rebuild it with the CUDA toolkit and cuBLASLt (POLYTUNE_CUDA=ON), or set ${what} to "cpu" or "auto" (see \`polytune devices\`)`);
  }
  if (!have.includes(want)) {
    throw new Error(`${what} is "${setting}" but this machine has ${have.length ? have.join(', ') : 'no GPU the CUDA runtime can use'} (see \`polytune devices\`)`);
  }
  return { device: want, why: `device: ${want} (${what} is "${setting}")` };
}
