// The device as a value: Tensor.device, to(), outputs on their inputs' device, the CPU-only build's
// refusals, train.device and `polytune devices`. Mixed-device calls need a second device: they are
// exercised by test/ops/*'s backends blocks where a GPU build runs (skipped here, and said so).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { devicesReport, devicesText } from '../../src/cli/devices.js';
import { Tensor, native, ops, parseDevice, withScope } from '../../src/tensor/index.js';
import { parseRunConfig, runTraining } from '../../src/train/index.js';
import { pickTrainDevice } from '../../src/train/device.js';
import { runCli } from '../helpers/cli.js';

const built = native().buildInfo().cuda;
const data = { languages: ['EN'], files: 'en.json' };

describe('Tensor.device', () => {
  it('is cpu for every constructor and for every op output', () => {
    withScope(() => {
      const x = Tensor.fromArray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
      const w = Tensor.full([3], 'f32', 1, 'cpu');
      for (const t of [x, w, Tensor.empty([2], 'bf16'), Tensor.zeros([2], 'i32', 'cpu'), x.rows(1, 1), x.reshape([3, 2])]) {
        expect(t.device).toBe('cpu');
        expect(t.handle.device).toBe('cpu');
      }
      const { out, rstd } = ops.rmsnorm(x, w, 1e-5);
      const y = ops.matmul(x, x, { transB: true });
      for (const t of [out, rstd, y, ops.cast(x, 'bf16'), ops.add(x, x), ops.swiglu(x, x)]) expect(t.device).toBe('cpu');
      expect(x.describe()).toBe('f32[2, 3]');
    });
  });

  it('to() copies: a new tensor with the same bytes, independent of the source', () => {
    withScope(() => {
      const x = Tensor.fromArray(new Uint16Array([1, 0x3f80, 0x7fc1, 65535]), [2, 2], 'bf16');
      const y = x.to('cpu');
      expect(y).not.toBe(x);
      expect(y.handle.sameStorage(x.handle)).toBe(false);
      expect([y.dtype, y.shape, y.device]).toEqual(['bf16', [2, 2], 'cpu']);
      expect(Array.from(y.toArray())).toEqual([1, 0x3f80, 0x7fc1, 65535]);
      x.dispose();
      expect(Array.from(y.toArray())).toEqual([1, 0x3f80, 0x7fc1, 65535]);
      const v = Tensor.fromArray(new Int32Array([1, 2, 3, 4, 5, 6]), [3, 2]).rows(1, 2).to('cpu');
      expect(Array.from(v.toArray())).toEqual([3, 4, 5, 6]);
    });
  });

  it('argument errors carry code ERR_POLYTUNE_ARG, a CPU-only build\'s CUDA refusal included', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return (e as { code?: string }).code;
      }
      return 'no error';
    };
    withScope(() => {
      expect(code(() => ops.matmul(Tensor.zeros([2, 3], 'f32'), Tensor.zeros([4, 5], 'f32')))).toBe('ERR_POLYTUNE_ARG');
      expect(code(() => ops.add(Tensor.zeros([2], 'f32'), Tensor.zeros([3], 'f32')))).toBe('ERR_POLYTUNE_ARG');
      if (!built) expect(code(() => native().copy(Tensor.zeros([1], 'f32').handle, Tensor.zeros([2], 'f32').handle))).toBe('ERR_POLYTUNE_ARG');
    });
  });

  it('parses device names and refuses others', () => {
    expect(parseDevice('cpu')).toBe('cpu');
    expect(parseDevice('cuda')).toBe('cuda:0');
    expect(parseDevice('cuda:3')).toBe('cuda:3');
    for (const bad of ['gpu', 'cuda:', 'cuda:01', 'cuda:-1', 'CPU', 'cuda:x']) expect(() => parseDevice(bad), bad).toThrow(/unknown device/);
    expect(() => new (native().NativeTensor)([2], 'f32', 'tpu')).toThrow(/^empty: unknown device 'tpu' \(expected cpu, cuda or cuda:N\)$/);
  });

  it.skipIf(built)('a CPU-only build refuses CUDA tensors clearly, and copies nothing to them', () => {
    const before = native().memoryStats();
    expect(() => Tensor.empty([2, 3], 'f32', 'cuda:0')).toThrow(/this addon was built without CUDA; rebuild it .*POLYTUNE_CUDA=ON/);
    expect(() => Tensor.zeros([2], 'bf16', 'cuda:1')).toThrow(/^empty on cuda:1: this addon was built without CUDA/);
    withScope(() => {
      const x = Tensor.fromArray(new Float32Array([1, 2]), [2]);
      expect(() => x.to('cuda:0')).toThrow(/this addon was built without CUDA/);
    });
    expect(native().memoryStats()).toEqual(before);
    expect(native().devices()).toEqual(['cpu']);
  });
});

describe('train.device', () => {
  const fake = (cuda: boolean, gpus: string[]) => ({ buildInfo: () => ({ cuda, threads: 1, simd: 'x', isa: 'x', amx: false, gemmXwtInPlace: [] }), devices: () => ['cpu', ...gpus] });

  it('is "auto" by default and takes only auto, cpu, cuda and cuda:N', () => {
    expect(parseRunConfig({ model: 'tiny', data, out: 'o' }, { baseDir: '/c', where: 'run.json' }).train.device).toBe('auto');
    expect(parseRunConfig({ model: 'tiny', data, out: 'o', train: { device: 'cuda:1' } }, { baseDir: '/c', where: 'run.json' }).train.device).toBe('cuda:1');
    for (const bad of ['gpu', 'cuda:', 7, 'auto ']) {
      expect(() => parseRunConfig({ model: 'tiny', data, out: 'o', train: { device: bad } }, { baseDir: '/c', where: 'run.json' }), String(bad)).toThrow(
        /^run\.json: field "train\.device" must be "auto", "cpu", "cuda" or "cuda:N", got /,
      );
    }
  });

  it('auto picks CUDA only where the build has it and the machine a GPU, and says why', () => {
    expect(pickTrainDevice('auto', fake(false, []))).toEqual({ device: 'cpu', why: 'device: cpu (train.device "auto": this addon was built without CUDA)' });
    expect(pickTrainDevice('auto', fake(true, [])).why).toBe('device: cpu (train.device "auto": this build has CUDA but the machine shows no GPU)');
    expect(pickTrainDevice('auto', fake(true, ['cuda:0', 'cuda:1']))).toMatchObject({ device: 'cuda:0' });
    expect(pickTrainDevice('cpu', fake(true, ['cuda:0']))).toMatchObject({ device: 'cpu' });
    expect(pickTrainDevice('cuda', fake(true, ['cuda:0']))).toMatchObject({ device: 'cuda:0' });
    expect(pickTrainDevice('cuda:1', fake(true, ['cuda:0', 'cuda:1']))).toMatchObject({ device: 'cuda:1' });
  });

  it('a data-parallel job (MPI ranks, CPU collectives) stays on the CPU under auto and refuses an explicit GPU', () => {
    expect(pickTrainDevice('auto', fake(true, ['cuda:0']), 4)).toMatchObject({ device: 'cpu', why: expect.stringMatching(/4 MPI ranks; data parallel runs on the CPU/) });
    expect(pickTrainDevice('cpu', fake(true, ['cuda:0']), 2)).toMatchObject({ device: 'cpu' });
    expect(() => pickTrainDevice('cuda:0', fake(true, ['cuda:0']), 2)).toThrow(/^train\.device is "cuda:0" but this is a data-parallel job of 2 MPI ranks/);
    expect(pickTrainDevice('auto', fake(true, ['cuda:0']), 1)).toMatchObject({ device: 'cuda:0' });
  });

  it('an explicit cuda device that cannot be had is an error, never a fallback to the CPU', () => {
    expect(() => pickTrainDevice('cuda', fake(false, []))).toThrow(/^train\.device is "cuda" but this addon was built without CUDA; .*set train\.device to "cpu" or "auto"/);
    expect(() => pickTrainDevice('cuda:2', fake(true, ['cuda:0']))).toThrow(/^train\.device is "cuda:2" but this machine has cuda:0 /);
    expect(() => pickTrainDevice('cuda:0', fake(true, []))).toThrow(/this machine has no GPU the CUDA runtime can use/);
  });

  it.skipIf(built)('a run asking for cuda on a CPU-only build fails before it touches the run folder or the data', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pt-device-'));
    try {
      const cfg = parseRunConfig(
        { model: 'tiny', data: { languages: ['EN'], files: join(dir, 'missing.json') }, out: join(dir, 'run'), train: { device: 'cuda' } },
        { baseDir: dir, where: 'run.json' },
      );
      const lines: string[] = [];
      await expect(runTraining(cfg, { log: (l) => lines.push(l) })).rejects.toThrow(/^train\.device is "cuda" but this addon was built without CUDA/);
      expect(lines.join('\n')).not.toMatch(/loading/);
      expect(existsSync(join(dir, 'run'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('polytune devices', () => {
  const addon = (cuda: boolean, gpus: string[]) => ({
    buildInfo: () => ({ cuda, threads: 2, simd: 'avx512bf16', isa: 'avx512bf16 + avx512f (no amx)', amx: false, gemmXwtInPlace: [] }),
    devices: () => ['cpu', ...gpus],
    dist: { built: false, nccl: false } as ReturnType<typeof native>['dist'],
  });

  it('says what the build has and what the machine has, in every combination', () => {
    expect(devicesText(devicesReport(addon(false, []), null))).toMatch(/CUDA +no \(built without CUDA[\s\S]*GPUs +no NVIDIA driver visible; this build is CPU-only, so it cannot use a GPU/);
    expect(devicesText(devicesReport(addon(false, []), 2))).toMatch(/GPUs +the NVIDIA driver lists 2 GPUs; this build is CPU-only, so it cannot use them/);
    expect(devicesText(devicesReport(addon(true, []), 1))).toMatch(/CUDA +yes \(linked\)[\s\S]*GPUs +no GPU the CUDA runtime can use \(the NVIDIA driver lists 1 GPU\)/);
    const two = devicesText(devicesReport(addon(true, ['cuda:0', 'cuda:1']), 2));
    expect(two).toMatch(/GPUs +cuda:0, cuda:1 \(CUDA runtime\)/);
    expect(two).toMatch(/devices +cpu, cuda:0, cuda:1 +\(train\.device "auto" picks cuda:0\)/);
  });

  it('runs from the CLI, as text and as JSON describing this build', () => {
    const j = runCli(['devices', '--json']);
    expect(j.status, j.stderr).toBe(0);
    const r = JSON.parse(j.stdout);
    const b = native().buildInfo();
    expect(r.build).toMatchObject({ cuda: b.cuda, cpu: { isa: b.isa, simd: b.simd } }); // threads: the CLI helper runs with OMP_NUM_THREADS=1
    expect(r.devices).toEqual(native().devices());
    expect(r.driverGpus).toBe(existsSync('/proc/driver/nvidia/gpus') ? expect.any(Number) : null);
    const t = runCli(['devices']);
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/^build\n  CPU .*\n  CUDA .*\n  MPI .*\nmachine\n  GPUs .*\ndevices +cpu/);
  });
});
