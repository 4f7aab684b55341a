#pragma once
// Trainer<Model, Parallel, Optimizer> owns the step order — micro-batches with gradient
// accumulation, gradient reduction, clipping, the update — and the run around it: schedule,
// periodic validation, progress and JSON-lines metrics, atomic checkpoints and exact resume.
// The parallel policy picks how the model stores its parameters (whole, or ZeRO shards gathered
// per unit: parallel/policy.hpp) and what each rank's optimizer updates; the trainer's step is
// the same for every policy.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "slm/core/config_io.hpp"
#include "slm/core/op_profile.hpp"
#include "slm/data/loader.hpp"
#include "slm/data/rank_data.hpp"
#include "slm/optim/adamw.hpp"
#include "slm/optim/clip.hpp"
#include "slm/optim/schedule.hpp"
#include "slm/parallel/policy.hpp"
#include "slm/parallel/single.hpp"
#include "slm/train/checkpoint.hpp"
#include "slm/train/metrics.hpp"
#include "slm/train/run_config.hpp"

namespace slm {

// What the trainer reads data from (data::Loader models it).
template <class D>
concept BatchSource = requires(D& d, int64_t i, uint64_t p) {
    { d.next_train().tokens };
    { d.validation(i).targets };
    { d.validation_batches() } -> std::convertible_to<int64_t>;
    { d.position() } -> std::convertible_to<uint64_t>;
    { d.set_position(p) };
};

template <class BaseModel, parallel::ParallelPolicy Parallel = parallel::Single,
          class Optimizer = optim::AdamW>
class Trainer {
public:
    // BaseModel over the storage the parallel policy asks for (itself, unless the policy shards).
    using Model = typename BaseModel::template with_storage<parallel::parameters_t<Parallel>>;
    using B = typename Model::BackendType;
    using Master = typename Model::Master;

    Trainer(const ModelConfig& model_config, const RunConfig& run, Parallel parallel = {})
        : run_((run.validate(), run)),
          parallel_(std::move(parallel)),
          backend_(make_backend(parallel_)),
          model_(model_config, backend_, run.seed,
                 parallel::model_parameters(parallel_, model_config)),
          optimizer_(backend_, model_.layout(), run.adamw,
                     parallel::update_plan(parallel_, model_.layout().total())),
          schedule_{run.lr, run.min_lr, run.warmup, run.steps} {
        require(run.seq <= model_config.max_seq,
                "--seq " + std::to_string(run.seq) + " is longer than the model's max_seq " +
                    std::to_string(model_config.max_seq) + " (preset '" + model_config.name + "')");
        // Options only the backend reads (the GPU's GEMM algorithm picks).
        if constexpr (requires { backend_.configure(run.backend, true); })
            backend_.configure(run.backend, parallel_.rank() == 0);
        model_.set_recompute(run.recompute);
    }
    Trainer(const Trainer&) = delete;  // the model refers to backend_

    Model& model() { return model_; }
    B& backend() { return backend_; }
    const RunConfig& run() const { return run_; }
    int64_t step() const { return step_; }
    // Bytes of parameters, gradients and optimizer state this rank holds, from its allocations.
    StateBytes state_bytes() const {
        StateBytes b = model_.state_bytes();
        b.optimizer_state = optimizer_.bytes();
        return b;
    }

    // One optimizer step over run().grad_accum micro-batches drawn from `data`. Gradients and
    // parameters are what this rank holds (whole, or its ZeRO shards).
    template <BatchSource D>
    StepStats train_step(D& data) {
        model_.zero_gradients();
        double loss = 0;
        const double share = 1.0 / static_cast<double>(run_.grad_accum);
        // A policy that averages over ranks by summing pre-divided gradients scales them here.
        const double grad_share = share * parallel_.backward_scale();
        for (int64_t micro = 0; micro < run_.grad_accum; ++micro) {
            const auto batch = data.next_train();
            parallel::before_micro_batch(parallel_, micro + 1 == run_.grad_accum);
            loss += share * model_.forward_backward(batch.tokens.data(), batch.targets.data(),
                                                    batch.batch, batch.seq, grad_share).mean;
        }
        const int64_t n = model_.gradient_count();
        parallel_.reduce_gradients(backend_, model_.gradients(), n);
        loss = parallel_.sum_across_ranks(loss) / parallel_.world_size();
        const double norm = std::sqrt(parallel_.gradient_square_sum(backend_, model_.gradients(), n));
        require(std::isfinite(loss) && std::isfinite(norm),
                "loss or gradient norm is not finite at step " + std::to_string(step_ + 1) + " (loss " + std::to_string(loss) +
                    ", grad norm " + std::to_string(norm) +
                    "); lower --lr, raise warmup, or resume from an earlier checkpoint");
        const double lr = schedule_(step_);
        optimizer_.update(model_.parameters(), model_.gradients(), model_.working(), lr,
                          optim::clip_factor(norm, run_.adamw.max_grad_norm));
        parallel_.gather_parameters(backend_, model_.parameters(), model_.working(),
                                    model_.parameter_count());
        ++step_;
        return {step_, loss, lr, norm, run_.tokens_per_step() * parallel_.world_size()};
    }

    // Runs `steps` training steps (real ones: they update the model) with per-op timing on and
    // returns where their time went.
    template <BatchSource D>
    OpBreakdown profile(D& data, int64_t steps) {
        backend_.synchronize();
        backend_.collect_op_seconds();
        backend_.enable_profiling(true);
        const auto start = std::chrono::steady_clock::now();
        for (int64_t i = 0; i < steps; ++i) train_step(data);
        backend_.synchronize();
        OpBreakdown b;
        b.step_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        b.seconds = backend_.collect_op_seconds();
        b.steps = steps;
        backend_.enable_profiling(false);
        return b;
    }

    // A Loader directly: through its split across ranks (data::RankData), so a library user
    // validates on what train_llama does, at any world size.
    double evaluate(data::Loader& loader) {
        data::RankData split(loader);
        return evaluate(split);
    }
    double fit(data::Loader& loader) {
        data::RankData split(loader);
        return fit(split);
    }

    // Mean loss over the first run().eval_batches validation batches (fewer if the split is short).
    template <BatchSource D>
    double evaluate(D& data) {
        const int64_t count = std::min<int64_t>(run_.eval_batches, data.validation_batches());
        require(count > 0, "no validation batches: the validation split is shorter than one batch");
        double total = 0;
        for (int64_t i = 0; i < count; ++i) {
            const auto batch = data.validation(i);
            total += model_.evaluate(batch.tokens.data(), batch.targets.data(), batch.batch,
                                     batch.seq).mean;
        }
        return parallel_.sum_across_ranks(total / static_cast<double>(count)) /
               parallel_.world_size();
    }

    // Trains until run().steps, logging, evaluating and checkpointing on the way. Returns the
    // last validation loss.
    template <BatchSource D>
    double fit(D& data) {
        const bool lead = parallel_.rank() == 0;
        if (lead) std::filesystem::create_directories(run_.out_dir);
        MetricsLog log = lead ? MetricsLog(run_.out_dir / "metrics.jsonl") : MetricsLog();
        double val = NAN;
        if (step_ == 0) {
            val = evaluate(data);
            if (lead) log.validation(0, val);
        }
        using clock = std::chrono::steady_clock;
        const auto start = clock::now();
        auto last_log = start;
        const int64_t first_step = step_;
        int64_t tokens_since_log = 0;
        while (step_ < run_.steps) {
            // After one warm-up step (GEMM algorithm choice, first-touch allocations), profile.
            if (run_.profile_steps > 0 && step_ == first_step + 1 && step_ + run_.profile_steps < run_.steps) {
                const OpBreakdown b = profile(data, run_.profile_steps);
                if (lead) log.profile(step_, b);
            }
            const StepStats s = train_step(data);
            tokens_since_log += s.tokens;
            const bool last = step_ == run_.steps;
            if (step_ % run_.log_interval == 0 || last) {
                backend_.synchronize();
                const auto now = clock::now();
                const double since = std::chrono::duration<double>(now - last_log).count();
                const double elapsed = std::chrono::duration<double>(now - start).count();
                const double per_step = elapsed / static_cast<double>(step_ - first_step);
                if (lead)
                    log.train(s, run_.steps, static_cast<double>(tokens_since_log) / since, elapsed,
                              per_step * static_cast<double>(run_.steps - step_));
                last_log = now;
                tokens_since_log = 0;
            }
            if ((run_.eval_interval > 0 && step_ % run_.eval_interval == 0) || last) {
                val = evaluate(data);
                if (lead) log.validation(step_, val);
            }
            if ((run_.checkpoint_interval > 0 && step_ % run_.checkpoint_interval == 0) || last) {
                save_checkpoint(checkpoint_path(), data.position());
                if constexpr (requires { backend_.on_checkpoint(); })
                    if (lead) backend_.on_checkpoint();
            }
        }
        return val;
    }

    std::filesystem::path checkpoint_path() const { return run_.out_dir / "checkpoint.bin"; }

    // Writes weights, optimizer moments, step, data position and seed. Every rank calls it: shards
    // are gathered to rank 0, which writes the same file as Single would.
    void save_checkpoint(const std::filesystem::path& path, uint64_t loader_position) {
        const bool lead = parallel_.rank() == 0;
        const int64_t n = model_.layout().total();
        std::vector<Master> params(lead ? n : 0), m(lead ? n : 0), v(lead ? n : 0);
        model_.get_parameters(lead ? params.data() : nullptr);
        const int64_t held = optimizer_.state_size();
        parallel::gather_state_to_root(parallel_, backend_, optimizer_.first_moment(), held, n,
                                       lead ? m.data() : nullptr);
        parallel::gather_state_to_root(parallel_, backend_, optimizer_.second_moment(), held, n,
                                       lead ? v.data() : nullptr);
        if (!lead) return;
        CheckpointState state{step_, loader_position, run_.seed, optimizer_.steps()};
        slm::save_checkpoint(path, model_.config(), state, params.data(), m.data(), v.data(), n);
    }

    // Restores a checkpoint written by save_checkpoint for the same model shape, under any policy
    // and world size: each rank takes its slices. The data source continues where the
    // checkpointed run left off.
    template <BatchSource D>
    void resume(const std::filesystem::path& path, D& data) {
        auto c = load_checkpoint<Master>(path);
        const std::string diff = config_difference(c.config, model_.config());
        require(diff.empty(), "checkpoint '" + path.string() +
                                  "' was written for another model (" + diff +
                                  "); pick the matching --preset or a new --out directory");
        const int64_t n = model_.layout().total();
        require(static_cast<int64_t>(c.params.size()) == n,
                "checkpoint '" + path.string() + "' holds " + std::to_string(c.params.size()) +
                    " values, the model needs " + std::to_string(n));
        model_.set_parameters(c.params.data());
        optimizer_.load_moments(c.first_moment.data(), c.second_moment.data());
        optimizer_.set_steps(c.state.optimizer_steps);
        step_ = c.state.step;
        data.set_position(c.state.loader_position);
    }

private:
    // On the GPU the policy's communicator picked (one process per GPU), else the default.
    static B make_backend(const Parallel& parallel) {
        if constexpr (requires { parallel.device(); } && std::is_constructible_v<B, int>)
            return B(parallel.device());
        else
            return B();
    }

    RunConfig run_;
    Parallel parallel_;
    B backend_;
    Model model_;
    typename Optimizer::template State<B> optimizer_;
    optim::WarmupCosine schedule_;
    int64_t step_ = 0;
};

}  // namespace slm
