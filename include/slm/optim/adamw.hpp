#pragma once
// AdamW with decoupled weight decay and bias correction, over the flat buffers. Weight decay
// applies to matrices only (the layout marks norm gains as no-decay); the update walks the
// maximal runs of equal decay so each run is one backend call. What it updates is an UpdatePlan:
// the whole buffer, one slice [begin, end) of it, or (ZeRO) this rank's slice of every parameter
// unit, with the parameters and gradients held whole or as packed shards.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "slm/core/adamw_step.hpp"
#include "slm/core/backend.hpp"
#include "slm/core/parameter_layout.hpp"
#include "slm/optim/update_plan.hpp"

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

    // Over the slice [begin, end) of whole, in-place buffers (end < 0: to the end).
    AdamWState(B& backend, const ParameterLayout& layout, const AdamWConfig& config,
               int64_t begin = 0, int64_t end = -1)
        : AdamWState(backend, layout, config,
                     UpdatePlan::slice(begin, end < 0 ? layout.total() : end)) {}

    AdamWState(B& backend, const ParameterLayout& layout, const AdamWConfig& config,
               UpdatePlan plan)
        : backend_(backend),
          config_(config),
          plan_(std::move(plan)),
          m_(backend.template allocate<Master>(plan_.state_size)),
          v_(backend.template allocate<Master>(plan_.state_size)) {
        for (const auto& r : plan_.ranges)
            require(0 <= r.flat && r.size >= 0 && r.flat + r.size <= layout.total() &&
                        0 <= r.state_at && r.state_at + r.size <= plan_.state_size,
                    "AdamW range of " + std::to_string(r.size) + " elements at flat " +
                        std::to_string(r.flat) + " is outside the parameter or state buffer");
        split_into_runs(layout);
        backend.zero(m_.data(), plan_.state_size);
        backend.zero(v_.data(), plan_.state_size);
    }

    const AdamWConfig& config() const { return config_; }
    int64_t steps() const { return steps_; }
    void set_steps(int64_t s) { steps_ = s; }
    const UpdatePlan& plan() const { return plan_; }
    int64_t state_size() const { return plan_.state_size; }
    Master* first_moment() { return m_.data(); }
    Master* second_moment() { return v_.data(); }
    // Bytes the two moment buffers hold, read from the buffers themselves.
    int64_t bytes() const {
        return (static_cast<int64_t>(m_.size()) + static_cast<int64_t>(v_.size())) *
               static_cast<int64_t>(sizeof(Master));
    }

    // Takes this optimizer's ranges of whole flat host moment arrays (read from a checkpoint).
    void load_moments(const Master* m_flat, const Master* v_flat) {
        for (const auto& r : plan_.ranges) {
            backend_.upload(m_.data() + r.state_at, m_flat + r.flat, r.size);
            backend_.upload(v_.data() + r.state_at, v_flat + r.flat, r.size);
        }
    }

    // Updates the plan's ranges. params, grads, working: the buffers the plan's offsets refer to
    // (working may be null). clip: the global-norm factor from clip_factor().
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
            s.weight_decay = r.decay ? config_.weight_decay : 0.0;
            backend_.adamw_update(params + r.at.param_at, grads + r.at.grad_at,
                                  m_.data() + r.at.state_at, v_.data() + r.at.state_at,
                                  working ? working + r.at.param_at : nullptr, r.at.size, s);
        }
    }

private:
    // A piece of a plan range with one decay flag: one backend call.
    struct Run {
        UpdateRange at;
        bool decay;
    };

    // Cuts each plan range where the layout's decay flag changes (padding joins the tensor
    // before it).
    void split_into_runs(const ParameterLayout& layout) {
        struct Decay {
            int64_t begin, end;
            bool decay;
        };
        std::vector<Decay> decays;
        for (const auto& t : layout.tensors()) {
            if (decays.empty() || decays.back().decay != t.decay) decays.push_back({t.offset, 0, t.decay});
            decays.back().end = t.offset + t.size;
        }
        decays.back().end = layout.total();
        for (size_t i = 1; i < decays.size(); ++i) decays[i].begin = decays[i - 1].end;
        decays.front().begin = 0;
        for (const auto& r : plan_.ranges)
            for (const auto& d : decays) {
                const int64_t lo = std::max(r.flat, d.begin), hi = std::min(r.flat + r.size, d.end);
                if (lo >= hi) continue;
                const int64_t skip = lo - r.flat;
                runs_.push_back({{lo, hi - lo, r.param_at + skip, r.grad_at + skip, r.state_at + skip},
                                 d.decay});
            }
    }

    B& backend_;
    AdamWConfig config_;
    UpdatePlan plan_;
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
