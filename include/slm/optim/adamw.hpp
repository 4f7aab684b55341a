#pragma once
// AdamW with decoupled weight decay and bias correction, over the flat buffers. Weight decay
// applies to matrices only (the layout marks norm gains as no-decay); the update walks the
// maximal runs of equal decay so each run is one backend call. A data-parallel policy that shards
// the optimizer state (ZeRO) constructs it over its slice [begin, end) of the flat buffer.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "slm/core/backend.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/optim/adamw_step.hpp"

namespace slm::optim {

struct AdamWConfig {
    double beta1 = 0.9;
    double beta2 = 0.95;
    double eps = 1e-8;
    double weight_decay = 0.1;
    double max_grad_norm = 1.0;  // global-norm clipping; <= 0 turns it off
};

template <Backend B>
class AdamWState {
public:
    using Master = typename B::Master;

    AdamWState(B& backend, const ParameterLayout& layout, const AdamWConfig& config,
               int64_t begin = 0, int64_t end = -1)
        : backend_(backend),
          config_(config),
          begin_(begin),
          end_(end < 0 ? layout.total() : end),
          m_(backend.template allocate<Master>(end_ - begin_)),
          v_(backend.template allocate<Master>(end_ - begin_)) {
        require(0 <= begin_ && begin_ <= end_ && end_ <= layout.total(),
                "AdamW shard [" + std::to_string(begin_) + ", " + std::to_string(end_) +
                    ") is outside the parameter buffer");
        // Runs of equal decay flag over the whole buffer; padding joins the run before it.
        for (const auto& t : layout.tensors()) {
            if (runs_.empty() || runs_.back().decay != t.decay) runs_.push_back({t.offset, 0, t.decay});
            runs_.back().end = t.offset + t.size;
        }
        runs_.back().end = layout.total();
        for (size_t i = 1; i < runs_.size(); ++i) runs_[i].begin = runs_[i - 1].end;
        runs_.front().begin = 0;
        backend.zero(m_.data(), end_ - begin_);
        backend.zero(v_.data(), end_ - begin_);
    }

    const AdamWConfig& config() const { return config_; }
    int64_t steps() const { return steps_; }
    void set_steps(int64_t s) { steps_ = s; }
    int64_t begin() const { return begin_; }
    int64_t end() const { return end_; }
    Master* first_moment() { return m_.data(); }
    Master* second_moment() { return v_.data(); }

    // Updates params[begin, end) from grads[begin, end). params, grads, working: whole flat
    // buffers (working may be null). clip: the global-norm factor from clip_factor().
    void update(Master* params, const typename B::Grad* grads, typename B::Act* working,
                double lr, double clip) {
        ++steps_;
        AdamWStep s;
        s.lr = lr;
        s.beta1 = config_.beta1;
        s.beta2 = config_.beta2;
        s.eps = config_.eps;
        s.grad_scale = clip;
        s.bias_correction1 = 1.0 - std::pow(config_.beta1, static_cast<double>(steps_));
        s.bias_correction2 = 1.0 - std::pow(config_.beta2, static_cast<double>(steps_));
        for (const auto& r : runs_) {
            const int64_t lo = std::max(r.begin, begin_), hi = std::min(r.end, end_);
            if (lo >= hi) continue;
            s.weight_decay = r.decay ? config_.weight_decay : 0.0;
            backend_.adamw_update(params + lo, grads + lo, m_.data() + (lo - begin_),
                                  v_.data() + (lo - begin_), working ? working + lo : nullptr,
                                  hi - lo, s);
        }
    }

private:
    struct Run {
        int64_t begin, end;
        bool decay;
    };
    B& backend_;
    AdamWConfig config_;
    int64_t begin_, end_;
    typename B::template Buffer<Master> m_, v_;
    std::vector<Run> runs_;
    int64_t steps_ = 0;
};

// The optimizer policy for Trainer<Model, Parallel, Optimizer>.
struct AdamW {
    using Config = AdamWConfig;
    template <Backend B>
    using State = AdamWState<B>;
};

}  // namespace slm::optim
