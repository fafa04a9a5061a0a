#!/usr/bin/env bash
# The CUDA backend's check on the GPU machine, as one prepared run (2.5-5 minutes on an H200):
#   1. build the addon and the standalone checker with plain CMake (no npm there; Node.js and its
#      headers come from .device/, which ../shared/device/pack.sh fills);
#   2. load the built addon in Node and print buildInfo (must say cuda: true);
#   3. run native/cuda/check (every CUDA kernel against its CPU twin on identical inputs);
#   3b. run the device tests through the addon (.device/device-tests.mjs, bundled here by --pack: the
#      cross-backend op tables of test/ops/ and the model-level CUDA-vs-CPU tests of test/model/,
#      under a small vitest shim, since vitest's toolchain does not fit in what travels);
#   3c. train the embedded default on cuda and on the cpu through the bundled CLI, and compare losses;
#   3d. compare the model on cuda with Hugging Face transformers (hf_reference.py) on stories260K and a
#      2-layer 7B-shaped model: logits, loss, every gradient;
#   3e. time decoding on cuda (bench decode --device cuda) against the device's copy bandwidth;
#   4. run ../shared/device/peers.py (PyTorch on the same machine, same call) for the peer figures;
#   5. time our kernels at the peers' shapes and print one table: ours, the peer's, the ratio;
#   5b. on the host CPU (which has AMX): the GEMM check on the AMX tiles and the native paths, the
#       cross-entropy/SwiGLU and attention checks, bf16 GEMM at the 7B shapes against torch.matmul
#       (bench/host/), and bench step against that machine's PyTorch (a modern one);
#   6. run the checker again under compute-sanitizer's memcheck and racecheck (in the time left);
#   7. list what this script does not run yet, as TODO lines.
# Everything lands in $OUT (the device tool's return folder, at most 8 files: summary.txt, build.log,
# check.txt, tests.txt, sanitizer.txt, peers.txt, peers.json, bench.json; the table is in
# summary.txt), or bench/results/device-check/.
#
# Here (the development machine), once before the device call:
#   bash bench/device-check.sh --pack
# which runs ../shared/device/pack.sh, copies peers.py, hf_reference.py and stories260K into
# .device/shared/ (the ../shared beside the checkout does not travel) and bundles the Node parts
# (test/device/rolldown.config.mjs). Then, through the device tool:
#   run(command: "bash bench/device-check.sh", carry: [".device", "node_modules/node-addon-api"], timeout_s: 540)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${1:-}" = "--pack" ]; then
  set -e
  bash ../shared/device/pack.sh
  mkdir -p .device/shared
  cp ../shared/device/peers.py ../shared/device/hf_reference.py .device/shared/
  mkdir -p .device/shared/data/stories260k
  cp ../shared/data/stories260k/stories260K.bin .device/shared/data/stories260k/
  [ -d node_modules/node-addon-api ] || { echo "node_modules/node-addon-api is missing (npm ci first)"; exit 1; }
  npx rolldown -c test/device/rolldown.config.mjs --logLevel warn
  echo "packed: .device/ (node, headers, peers.py); carry .device and node_modules/node-addon-api"
  exit 0
fi

out=${OUT:-$root/bench/results/device-check}
mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
t_start=$(date +%s)
say() { echo "$*" | tee -a "$summary"; }
step() { say "== $1 ($(($(date +%s) - t_start)) s)"; }
status=0
# The whole run stays inside 450 s: each step gets min(its own limit, what is left minus 20 s).
# DEVICE_CHECK_SKIP="sanitizer peers bench hf decode cpu" leaves steps out (a short rerun that checks a fix);
# DEVICE_CHECK_SANITIZE="kv_attention" puts only those checker cases under the sanitizer.
budget_total=${DEVICE_CHECK_BUDGET_S:-450}
skipped() { [[ " ${DEVICE_CHECK_SKIP:-} " == *" $1 "* ]] && say "skipped (DEVICE_CHECK_SKIP)"; }
cap() { local left=$((budget_total - ($(date +%s) - t_start) - 20)); [ "$left" -lt "$1" ] && echo $((left > 5 ? left : 5)) || echo "$1"; }

step "machine"
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>&1
  nvcc --version | tail -1
  git log -1 --format='%H %s' 2>/dev/null
} 2>&1 | tee -a "$summary"

if [ -f .device/prelude.sh ]; then
  # shellcheck disable=SC1091
  source .device/prelude.sh >/dev/null
  have_node=1
else
  say "no .device/prelude.sh: run 'bash bench/device-check.sh --pack' here first and carry .device; building without Node"
  have_node=0
fi
shared=.device/shared
[ -f "$shared/peers.py" ] || shared=../shared/device

step "build (cmake, POLYTUNE_CUDA=ON)"
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
# The checker first: a Node or addon problem must not cost the kernel check.
if cmake -S . -B build-dev "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DPOLYTUNE_CUDA=ON >"$out/build.log" 2>&1 &&
   cmake --build build-dev -j "$(nproc)" --target polytune_cuda_check >>"$out/build.log" 2>&1; then
  say "checker build OK ($(grep -o 'CUDA backend [^;]*; architectures [^ ]*' "$out/build.log" | head -1))"
else
  say "checker build FAILED (tail of build.log:)"; tail -30 "$out/build.log" | tee -a "$summary"
  exit 1
fi
if [ "$have_node" = 1 ]; then
  if cmake --build build-dev -j "$(nproc)" --target polytune_native >>"$out/build.log" 2>&1; then
    say "addon build OK"
  else
    say "addon build FAILED (tail of build.log:)"; tail -20 "$out/build.log" | tee -a "$summary"
    have_node=0; status=1
  fi
fi

if [ "$have_node" = 1 ]; then
  step "addon loads in Node"
  mkdir -p build/Release && cp build-dev/polytune_native.node build/Release/
  if node -e "const m = require('./build/Release/polytune_native.node'); const b = m.buildInfo(); console.log(JSON.stringify(b)); if (!b.cuda) process.exit(3);" 2>&1 | tee -a "$summary"; then
    :
  else
    say "addon: FAILED to load or buildInfo().cuda is false"; status=1
  fi
fi

step "kernels vs CPU (polytune_cuda_check)"
# The checker's CPU references use OpenMP; leave a core for the driver.
OMP_NUM_THREADS=$(( $(nproc) > 2 ? $(nproc) - 1 : 1 )) timeout "$(cap 120)" build-dev/polytune_cuda_check 2>&1 | tee "$out/check.txt"
rc=${PIPESTATUS[0]}
say "checker exit $rc: $(tail -1 "$out/check.txt")"
[ "$rc" = 0 ] || status=1
# The same under POLYTUNE_CUDA_SYNC=1 for the kernels a fault would hide in (quick, and it exercises the switch).
echo "== POLYTUNE_CUDA_SYNC=1 attention" >>"$out/check.txt"
POLYTUNE_CUDA_SYNC=1 timeout "$(cap 40)" build-dev/polytune_cuda_check attention >>"$out/check.txt" 2>&1
say "checker attention under POLYTUNE_CUDA_SYNC=1: exit $? ($(tail -1 "$out/check.txt"))"

step "device tests through the addon (test/ops backends blocks, test/model/device-parity)"
if [ "$have_node" = 1 ] && [ -f .device/device-tests.mjs ]; then
  POLYTUNE_SHARED=.device/shared timeout "$(cap 150)" node .device/device-tests.mjs >"$out/tests.txt" 2>&1
  rc=$?
  say "device tests exit $rc: $(tail -1 "$out/tests.txt")"
  grep -A6 '^FAIL' "$out/tests.txt" | head -60 | tee -a "$summary"
  [ "$rc" = 0 ] || status=1
else
  say "device tests SKIPPED: no Node (.device) or no .device/device-tests.mjs (run --pack here)"; status=1
fi

step "polytune devices; the embedded default trained on cuda and on the cpu (bundled CLI)"
if [ "$have_node" = 1 ] && [ -f .device/cli/polytune.js ]; then
  node .device/cli/polytune.js devices 2>&1 | tee -a "$summary"
  for dev in cuda cpu; do
    rm -rf "/tmp/pt-run-$dev"
    echo "== polytune train --set train.device=$dev" >>"$out/tests.txt"
    timeout "$(cap 100)" node .device/cli/polytune.js train --set train.epochs=1 --set train.device=$dev --set out=/tmp/pt-run-$dev >>"$out/tests.txt" 2>&1
    rc=$?
    say "train on $dev: exit $rc ($(grep -c '"step"' /tmp/pt-run-$dev/metrics.jsonl 2>/dev/null || echo 0) steps in metrics.jsonl)"
    [ "$rc" = 0 ] || status=1
  done
  python3 - /tmp/pt-run-cuda/metrics.jsonl /tmp/pt-run-cpu/metrics.jsonl <<'PY' 2>&1 | tee -a "$summary"
import json, sys
def steps(p):
    try: return [r for r in map(json.loads, open(p)) if "step" in r and "loss" in r]
    except Exception as e: print(f"(no {p}: {e})"); return []
g, c = steps(sys.argv[1]), steps(sys.argv[2])
n = min(len(g), len(c))
if n:
    rel = [abs(a["loss"] - b["loss"]) / b["loss"] for a, b in zip(g, c)]
    ms = lambda rs: sorted(r["ms"] for r in rs[1:])[len(rs[1:]) // 2] if len(rs) > 1 else float("nan")
    print(f"train loss, cuda vs cpu over {n} steps: step 1 {g[0]['loss']:.4f} / {c[0]['loss']:.4f}, "
          f"step {n} {g[n-1]['loss']:.4f} / {c[n-1]['loss']:.4f}, max relative difference {max(rel):.2e}; "
          f"median step {ms(g):.1f} ms on cuda, {ms(c):.1f} ms on cpu")
# bf16 rounding on the two backends moves the losses by ~1e-4 over an epoch (7.4e-5 seen on an H200).
ok = n > 0 and n == len(g) == len(c) and max(rel) <= 1e-2
print("train comparison:", "OK (<= 1e-2)" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
else
  say "train SKIPPED: no Node or no .device/cli (run --pack here)"
fi

step "Hugging Face transformers on the same weights and batch (hf_reference.py, f32): stories260K, a 2-layer 7B-shaped model"
if skipped hf; then
  :
elif [ "$have_node" = 1 ] && [ -f .device/hf-parity.mjs ] && [ -f "$shared/hf_reference.py" ]; then
  hf=/tmp/pt-hf; rm -rf "$hf"
  {
    POLYTUNE_SHARED=.device/shared timeout "$(cap 60)" node .device/hf-parity.mjs prepare "$hf"
    for m in "$hf"/*/; do
      PYTHONUNBUFFERED=1 timeout "$(cap 90)" python3 "$shared/hf_reference.py" "$m" "$m/batch.json" "$m/ref" --dtype float32
    done
  } >>"$out/tests.txt" 2>&1
  timeout "$(cap 90)" node .device/hf-parity.mjs compare "$hf" cuda:0 2>&1 | tee -a "$out/tests.txt" | tee -a "$summary"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
else
  say "Hugging Face comparison SKIPPED: no Node, no .device/hf-parity.mjs or no hf_reference.py"
fi

step "decoding on cuda (polytune bench decode --device cuda: 4 layers of Llama-2-7B's shapes, bf16)"
if skipped decode; then
  :
elif [ "$have_node" = 1 ] && [ -f .device/cli/polytune.js ]; then
  timeout "$(cap 90)" node .device/cli/polytune.js bench decode --device cuda --out /tmp/pt-decode.json 2>&1 | tee -a "$summary"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
else
  say "decode SKIPPED: no Node or no .device/cli (run --pack here)"
fi

step "peers (PyTorch, same machine, same call)"
if skipped peers; then
  :
elif [ -f "$shared/peers.py" ] && python3 -c 'import torch' 2>/dev/null; then
  PEERS_OUT="$out" PYTHONUNBUFFERED=1 timeout "$(cap 120)" python3 "$shared/peers.py" copy gemm attn adamw >"$out/peers.txt" 2>&1
  say "peers exit $?: $(grep -c ':' "$out/peers.txt") figures in peers.json"
else
  say "peers SKIPPED: no $shared/peers.py or no torch"
fi

step "our kernels at the peers' shapes (polytune_cuda_check --bench)"
skipped bench || timeout "$(cap 60)" build-dev/polytune_cuda_check --bench "$out/bench.json" 2>&1 | tee -a "$summary"

step "table: ours, the peer's, the ratio (higher is better for us)"
python3 - "$out/bench.json" "$out/peers.json" <<'PY' 2>&1 | tee -a "$summary"
import json, sys
def load(p):
    try: return json.load(open(p))
    except Exception as e: print(f"(no {p}: {e})"); return {}
ours, peer = load(sys.argv[1]), load(sys.argv[2])
rows = []
for k, v in ours.get("gemm_TFLOPs", {}).items():
    rows.append((f"gemm bf16 {k} (cuBLASLt) TFLOP/s", v, peer.get("gemm_TFLOPs", {}).get(k)))
a = ours.get("attn_causal_h128_S2048", {})
pa = peer.get("attn_causal_h128", {})
for be in ("FLASH_ATTENTION", "CUDNN_ATTENTION"):
    pv = pa.get(f"{be}_S2048", {})
    pv = pv if isinstance(pv, dict) else {}
    for d in ("fwd", "bwd"):
        rows.append((f"attention {d} B8 H32 S2048 hd128 vs {be} TFLOP/s", a.get(f"{d}_TFLOPs"), pv.get(f"{d}_TFLOPs")))
ad = ours.get("adamw_fp32", {})
pad = peer.get("adamw_fp32_fused", {})
rows.append(("adamw fp32 GB/s at 28 B/param (vs torch fused)", ad.get("GBps_at_28B_per_param"), pad.get("GBps_at_28B_per_param")))
print(f"| work | ours | peer | ratio |\n| --- | ---: | ---: | ---: |")
for name, o, p in rows:
    r = f"{o / p:.2f}" if isinstance(o, (int, float)) and isinstance(p, (int, float)) and p else "-"
    print(f"| {name} | {o if o is not None else '-'} | {p if p is not None else '-'} | {r} |")
PY

step "the host CPU: the GEMM check on its AMX tiles, the cross-entropy/SwiGLU and attention checks, GEMM and bench step against its PyTorch"
# The development machines have no AMX; this host does. test/core/gemm.test.ts, exp.test.ts and
# attention-isa.test.ts compile the same checks (there, the AMX entry skips itself); here the GEMM
# check runs on the tiles.
if skipped cpu; then
  :
else
  say "host CPU: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1), $(nproc) CPUs, AMX: $(grep -qw amx_tile /proc/cpuinfo && echo yes || echo no)"
  chk=/tmp/pt-cpu-check; mkdir -p "$chk"
  cpu_check() {  # name, flags, sources...: compile and run one check; its last line is a JSON summary
    local name=$1 flags=$2; shift 2
    # shellcheck disable=SC2086
    if g++ -O2 -std=c++17 -fopenmp $flags -Inative "$@" -o "$chk/$name" >>"$out/build.log" 2>&1; then
      local res; res=$(OMP_NUM_THREADS=$(nproc) timeout "$(cap 60)" "$chk/$name" 2>>"$out/tests.txt" | tail -1)
      say "$name ($flags): $res"
      # Every count of failures in the summary must be 0.
      python3 -c 'import json,sys; r=json.loads(sys.argv[1]); bad=[k for k,v in r.items() if k in ("bad","roundBad","threadMismatches") and v] + [k for k,v in r.items() if isinstance(v,dict) and v.get("bad")]; sys.exit(1 if bad else 0)' "$res" 2>/dev/null || { say "$name: FAILED"; status=1; }
    else
      say "$name: compile FAILED (see build.log)"; status=1
    fi
  }
  gemm_srcs=(test/native/gemm_check.cc native/cpu/gemm.cc native/cpu/pack_cache.cc native/cpu/gemm_small_m.cc)
  cpu_check gemm_amx "-march=sapphirerapids" "${gemm_srcs[@]}"
  cpu_check gemm_native "-march=native -mno-amx-tile -mno-amx-bf16 -mno-amx-int8" "${gemm_srcs[@]}"
  cpu_check ce_swiglu "-march=native" test/native/ce_swiglu_check.cc native/cpu/cross_entropy.cc native/cpu/swiglu.cc
  cpu_check attention "-march=native" test/native/attention_check.cc native/cpu/attention.cc native/cpu/kv_attention.cc
  if [ "$have_node" = 1 ] && python3 -c 'import torch' 2>/dev/null; then
    # bf16 GEMM at the 7B shapes, ours (the addon built above) then torch.matmul, all CPUs each.
    ours=$(timeout "$(cap 60)" node bench/host/gemm-ours.cjs build/Release/polytune_native.node 2>>"$out/tests.txt")
    theirs=$(timeout "$(cap 60)" python3 bench/host/gemm_torch.py 2>>"$out/tests.txt")
    python3 - "$ours" "$theirs" <<'PY' 2>&1 | tee -a "$summary"
import json, sys
try: o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
except Exception as e: print(f"host GEMM: no figures ({e})"); sys.exit(0)
print(f"host GEMM bf16 GFLOP/s, B packed every call: ours ({o['isa']}, {o['threads']} threads) vs torch {t['torch']} matmul ({t['threads']} threads)")
for k in [k for k in o if k not in ("isa", "threads")]:
    print(f"  {k:16s} ours {o[k]:8.1f}  torch {t.get(k, float('nan')):8.1f}  ours/torch {o[k] / t[k]:.2f}" if t.get(k) else f"  {k}: ours {o[k]}")
PY
  fi
  if [ "$have_node" = 1 ] && [ -f .device/cli/polytune.js ]; then
    timeout "$(cap 150)" node .device/cli/polytune.js bench step --device cpu 2>&1 | tee -a "$summary"
    [ "${PIPESTATUS[0]}" = 0 ] || status=1
  fi
fi

step "compute-sanitizer: memcheck (out-of-bounds, misaligned) and racecheck (shared memory)"
san=/usr/local/cuda/bin/compute-sanitizer
if skipped sanitizer; then
  :
elif [ -x "$san" ]; then
  # Fewer OpenMP threads: the CPU references are not what is being checked here.
  OMP_NUM_THREADS=4 timeout "$(cap 150)" "$san" --tool memcheck --error-exitcode 9 --print-limit 20 \
    build-dev/polytune_cuda_check ${DEVICE_CHECK_SANITIZE:-rmsnorm rope embedding cross_entropy attention norm_adamw} >"$out/sanitizer.txt" 2>&1
  say "memcheck exit $? (0 clean, 9 errors found, 124 timed out): $(grep -m1 'ERROR SUMMARY' "$out/sanitizer.txt")"
  echo "== racecheck ${DEVICE_CHECK_SANITIZE:-attention rmsnorm cross_entropy}" >>"$out/sanitizer.txt"
  OMP_NUM_THREADS=4 timeout "$(cap 120)" "$san" --tool racecheck --error-exitcode 9 --print-limit 20 \
    build-dev/polytune_cuda_check ${DEVICE_CHECK_SANITIZE:-attention rmsnorm cross_entropy} >>"$out/sanitizer.txt" 2>&1
  say "racecheck exit $?: $(grep 'RACECHECK SUMMARY\|ERROR SUMMARY' "$out/sanitizer.txt" | tail -1)"
else
  say "compute-sanitizer not found at $san: skipped"
fi

step "not run yet"
for todo in \
  "npx polytune bench ops --device cuda, tabled against peers.json (our figure, the peer's, the ratio)"; do
  say "TODO $todo"
done

say "== done in $(($(date +%s) - t_start)) s: $([ $status = 0 ] && echo PASS || echo FAIL)"
exit $status
