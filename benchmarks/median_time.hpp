#pragma once
// The GPU benchmarks' timing loop: `work` twice untimed (warm-up: allocations, cuBLASLt plans),
// then once per benchmark iteration between CUDA events on `stream`, each iteration's time
// reported as manual time; the median iteration is returned and set as the median_ms counter.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "slm/cuda/stream_timer.cuh"

namespace slm::bench {

inline double time_median(benchmark::State& state, cudaStream_t stream, const std::function<void()>& work) {
    work();
    work();
    std::vector<double> times;
    for (auto _ : state) {
        const double t = cuda::seconds_on_stream(stream, work);
        state.SetIterationTime(t);
        times.push_back(t);
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    state.counters["median_ms"] = median * 1e3;
    return median;
}

}  // namespace slm::bench
