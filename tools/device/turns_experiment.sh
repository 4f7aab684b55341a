#!/usr/bin/env bash
# Where the deterministic backward loses time: the attention tests, then forward+backward of the
# default (flash), the deterministic mode (flash_deterministic: the warpgroup kernel taking turns),
# the candidate with turns from key tile 0 up (flash_deterministic_tile_0_up) and the old
# deterministic path (flash_deterministic_mma_sync) at head_dim 64, 128 and 256, beside
# the deterministic kernel built with its waits compiled out (-DSLM_FLASH_TURNS_NO_WAIT, in
# build/nowait; not deterministic): the gap between the two is what the waits cost, the rest the
# grid and walk. Prints each one's TFLOP/s over the default's. Carry build/deps; about 3 minutes.
set -u
cd "$(dirname "$0")/../.."
export PATH=/usr/local/cuda/bin:$PATH; logs=$OUT; source tools/device/build_tree.bash
build_tree . build/device a "slm_cuda_attention_tests attention_cuda" -DCMAKE_CUDA_ARCHITECTURES=90a &
build_tree . build/nowait b attention_cuda -DCMAKE_CUDA_ARCHITECTURES=90a -DCMAKE_CUDA_FLAGS=-DSLM_FLASH_TURNS_NO_WAIT &
wait; echo built $SECONDS s
timeout 200 build/device/tests/slm_cuda_attention_tests > $OUT/tests.log 2>&1; echo tests rc=$?; grep -E 'test cases:|assertions:' $OUT/tests.log
f='/fwd_bwd/hdim:(64|128|256)/'
build/device/benchmarks/attention_cuda --benchmark_filter="^attention/flash(_deterministic|_deterministic_mma_sync|_deterministic_tile_0_up)?$f" --benchmark_format=json --benchmark_out=$OUT/a.json > /dev/null 2>&1
build/nowait/benchmarks/attention_cuda --benchmark_filter="^attention/flash_deterministic$f" --benchmark_format=json --benchmark_out=$OUT/b.json > /dev/null 2>&1
python3 - <<'P'
import json,os,re
o=os.environ['OUT']; t={}
for fn,tag in (('a.json',''),('b.json','nowait')):
    for b in json.load(open(f'{o}/{fn}'))['benchmarks']:
        m=re.match(r'attention/(\w+)/fwd_bwd/hdim:(\d+)/seq:(\d+)',b['name'])
        if m and 'TFLOPs' in b: t[(m[1]+tag,int(m[2]),int(m[3]))]=b['TFLOPs']
print('hd seq default det det/def nowait/def tile_0_up/def mmasync/def')
for hd in (64,128,256):
  for s in (512,1024,2048,4096,8192,16384):
    d=t.get(('flash',hd,s)); 
    if not d: continue
    r=lambda k: '%.3f'%(t[(k,hd,s)]/d) if (k,hd,s) in t else 'n/a'
    print(hd,s,'%.1f'%d,'%.1f'%t.get(('flash_deterministic',hd,s),0),r('flash_deterministic'),r('flash_deterministicnowait'),r('flash_deterministic_tile_0_up'),r('flash_deterministic_mma_sync'))
P
