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
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
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
#include "slm/train/checkpoint_saves.hpp"
#include "slm/train/divergence.hpp"
#include "slm/train/metrics.hpp"
#include "slm/train/resume_check.hpp"
#include "slm/train/run_config.hpp"
#include "slm/train/run_directory.hpp"
#include "slm/train/run_summary.hpp"

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
          model_(model_config, backend_, run.seed, parallel::model_parameters(parallel_, model_config)),
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
        run_.precision = std::string(Model::PrecisionType::name);
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
        // Scaling afresh after a save or resume in either run: a resume repeats the run exactly.
        if (std::exchange(restart_scaling_, false)) model_.restart_precision_scaling();
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
    // last validation loss (NaN when there was nothing left to train). Checkpoints go to
    // run().out_dir as numbered files written in the background (train/checkpoint_writer.hpp),
    // every checkpoint_interval steps, every checkpoint_minutes, and at the end (a save due
    // while the previous one is being written is deferred past it: train/save_schedule.hpp);
    // the run's end waits for the last write. Before each save the weights and the validation loss must be
    // finite: a run that diverged stops with an error and the last good checkpoint stays.
    template <BatchSource D>
    double fit(D& data) {
        const bool lead = parallel_.rank() == 0;
        if (lead) open_directory();
        // The checkpoint snapshot's host memory (page-locked on the GPU) once, before the steps:
        // not part of any save's stall. Ranks that each hold the whole state write shares.
        const int keep = static_cast<int>(run_.keep_checkpoints);
        saves_.prepare(parallel_, backend_, model_.layout().total(), run_.checkpoint_segment_bytes,
                       !parallel::ShardingPolicy<Parallel> && parallel_.world_size() > 1);
        MetricsLog log = lead ? MetricsLog(run_.out_dir / "metrics.jsonl") : MetricsLog();
        double val = NAN;
        if (step_ == 0) {
            val = evaluate(data);
            if (lead) log.validation(0, val);
        }
        using clock = std::chrono::steady_clock;
        const auto seconds_since = [](clock::time_point t) {
            return std::chrono::duration<double>(clock::now() - t).count();
        };
        const auto start = clock::now();
        auto last_save = start;
        SaveSchedule saves(run_.checkpoint_interval, run_.when_busy);
        bool deferred_once = false;
        const int64_t first_step = step_;
        int64_t tokens_since_log = 0;
        double train_seconds_since_log = 0;  // tokens/s counts these only
        auto step_start = clock::now();
        while (step_ < run_.steps) {
            saves_.poll(parallel_, dir_, keep);  // a failed background write stops the run here
            // After one warm-up step (GEMM algorithm choice, first-touch allocations), profile.
            if (run_.profile_steps > 0 && step_ == first_step + 1 && step_ + run_.profile_steps < run_.steps) {
                const OpBreakdown b = profile(data, run_.profile_steps);
                if (lead) log.profile(step_, b);
                step_start = clock::now();
            }
            const StepStats s = train_step(data);
            tokens_since_log += s.tokens;
            const bool last = step_ == run_.steps;
            if (step_ % run_.log_interval == 0 || last) {
                backend_.synchronize();
                train_seconds_since_log += seconds_since(step_start);
                const double elapsed = seconds_since(start);
                const double per_step = elapsed / static_cast<double>(step_ - first_step);
                if (lead)
                    log.train(s, run_.steps, static_cast<double>(tokens_since_log) / train_seconds_since_log,
                              elapsed, per_step * static_cast<double>(run_.steps - step_));
                tokens_since_log = 0;
                train_seconds_since_log = 0;
                step_start = clock::now();
            }
            bool evaluated = false;
            if ((run_.eval_interval > 0 && step_ % run_.eval_interval == 0) || last) {
                backend_.synchronize();
                train_seconds_since_log += seconds_since(step_start);
                const auto eval_start = clock::now();
                val = evaluate(data);
                evaluated = true;
                if (lead) log.validation(step_, val, seconds_since(eval_start));
                step_start = clock::now();
            }
            // Looked at every log interval (a collective, so every rank decides alike).
            const bool on_time =
                run_.checkpoint_minutes > 0 && step_ % run_.log_interval == 0 &&
                parallel_.sum_across_ranks(seconds_since(last_save) >= 60 * run_.checkpoint_minutes ? 1.0 : 0.0) > 0;
            const auto save = saves.at(step_, last, on_time, [&] { return saves_.busy(parallel_); });
            if (save.deferred_now && lead) log.checkpoint_deferred(step_, saves_.writing_step(), !deferred_once);
            deferred_once = deferred_once || save.deferred_now;
            if (save.save) {
                backend_.synchronize();
                train_seconds_since_log += seconds_since(step_start);
                // The last save waits for the write in flight: said apart from its own stall.
                if (last)
                    if (const double w = saves_.wait(parallel_, dir_, keep); lead && w > 0.1)
                        std::fprintf(stderr, "step %6lld | waited %.1f s for the write of step %lld before the last save\n",
                                     (long long)step_, w, (long long)saves_.writing_step());
                const auto save_start = clock::now();
                check_saveable(evaluated ? val : probe_loss(data));
                const auto file = save_checkpoint_async(data.position());
                if (lead) log.checkpoint(step_, file, seconds_since(save_start), save.due_step);
                if constexpr (requires { backend_.on_checkpoint(); })
                    if (lead) backend_.on_checkpoint();
                last_save = clock::now();
                step_start = clock::now();
            }
        }
        const auto end_wait = clock::now();
        saves_.wait(parallel_, dir_, keep);
        if (lead && seconds_since(end_wait) > 1)
            std::fprintf(stderr, "waited %.1f s for the last checkpoint write\n", seconds_since(end_wait));
        return val;
    }

    // The run directory's pointer to its newest checkpoint (a link to a numbered file).
    std::filesystem::path checkpoint_path() const { return run_.out_dir / "checkpoint.bin"; }

    // Writes weights, optimizer moments, step, data position, seed and the run's settings to
    // `path`, now (not in the background). Every rank calls it: shards are gathered to rank 0,
    // which writes the same file as Single would.
    void save_checkpoint(const std::filesystem::path& path, uint64_t loader_position) {
        restart_scaling_ = true;  // on every rank
        const int64_t n = model_.layout().total();
        std::vector<Master> whole(parallel_.rank() == 0 ? 3 * static_cast<size_t>(n) : 0);
        gather_state(parallel_.rank() == 0 ? whole.data() : nullptr);
        if (parallel_.rank() != 0) return;
        const auto meta = checkpoint_meta(loader_position);
        slm::save_checkpoint(path, meta.config, meta.settings, meta.state,
                             CheckpointPayload<Master>{whole.data(), n, meta.segment_bytes});
    }

    // Restores a checkpoint written by save_checkpoint for the same model shape, under any policy
    // and world size: each rank takes its slices. The data source continues where the
    // checkpointed run left off. Settings that differ from the checkpoint's are refused unless
    // run().allow_changes names them (train/resume_check.hpp).
    template <BatchSource D>
    void resume(const std::filesystem::path& path, D& data) {
        apply(load_checkpoint<Master>(path), path, data);
    }

    // Resumes from run().out_dir's newest checkpoint that verifies, falling back to older ones
    // (with a message) when the newest is damaged. Returns the file used.
    template <BatchSource D>
    std::filesystem::path resume_latest(D& data) {
        auto [c, file] = load_newest_checkpoint<Master>(run_.out_dir, parallel_.rank() == 0);
        apply(std::move(c), file, data);
        return file;
    }

private:
    // On the GPU the policy's communicator picked (one process per GPU), else the default.
    static B make_backend(const Parallel& parallel) {
        if constexpr (requires { parallel.device(); } && std::is_constructible_v<B, int>)
            return B(parallel.device());
        else
            return B();
    }

    std::string settings() const {
        return checkpoint_settings(model_.config(), run_, parallel_.world_size());
    }

    // Rank 0 locks and checks the run directory; a fresh run refuses to clobber another.
    void open_directory() {
        if (dir_.path() == run_.out_dir) return;
        dir_ = RunDirectory(run_.out_dir);
        if (step_ == 0 && !resumed_ && dir_.holds_run()) {
            require(run_.overwrite, RunDirectory::holds_run_refusal(run_.out_dir));
            dir_.clear_run();
        }
    }

    // Collective: params|m|v into `whole` (3n values) on rank 0; the others pass nullptr.
    void gather_state(Master* whole) {
        const int64_t n = model_.layout().total();
        model_.get_parameters(whole);
        const int64_t held = optimizer_.state_size();
        parallel::gather_state_to_root(parallel_, backend_, optimizer_.first_moment(), held, n, whole ? whole + n : nullptr);
        parallel::gather_state_to_root(parallel_, backend_, optimizer_.second_moment(), held, n,
                                       whole ? whole + 2 * n : nullptr);
    }

    typename CheckpointSaves<Master>::Meta checkpoint_meta(uint64_t loader_position) const {
        return {model_.config(), settings(),
                CheckpointState{step_, loader_position, run_.seed, optimizer_.steps(), schedule_.total_steps},
                run_.checkpoint_segment_bytes};
    }

    std::filesystem::path save_checkpoint_async(uint64_t loader_position) {
        restart_scaling_ = true;
        const int64_t n = model_.layout().total();
        const auto file = RunDirectory::numbered_in(run_.out_dir, step_);
        // Values [first, first + count) of params|m|v, from a rank that holds them all.
        auto copy_range = [&](Master* out, int64_t first, int64_t count) {
            const Master* arrays[3] = {model_.parameters(), optimizer_.first_moment(), optimizer_.second_moment()};
            for (int64_t j = 0; j < 3; ++j) {
                const int64_t lo = std::max(first, j * n), hi = std::min(first + count, (j + 1) * n);
                if (lo < hi) backend_.download(out + (lo - first), arrays[j] + (lo - j * n), hi - lo);
            }
        };
        saves_.save(parallel_, backend_, file, dir_, static_cast<int>(run_.keep_checkpoints),
                    checkpoint_meta(loader_position), n, [&](Master* whole) { gather_state(whole); }, copy_range);
        return file;
    }

    // One validation batch's loss, for a save at a step that did not evaluate.
    template <BatchSource D>
    double probe_loss(D& data) {
        const auto batch = data.validation(0);
        const double mean = model_.evaluate(batch.tokens.data(), batch.targets.data(), batch.batch,
                                            batch.seq).mean;
        return parallel_.sum_across_ranks(mean) / parallel_.world_size();
    }

    // Refuses to save a model that diverged (train/divergence.hpp).
    void check_saveable(double val_loss) {
        double sq = 0;
        if constexpr (std::is_same_v<Master, typename B::Grad>)
            sq = backend_.sum_of_squares(model_.parameters(), model_.parameter_count());
        require_not_diverged(step_, parallel_.sum_across_ranks(sq), val_loss, model_.config().vocab,
                             run_.out_dir);
    }

    template <BatchSource D>
    void apply(Checkpoint<Master> c, const std::filesystem::path& path, D& data) {
        check_resume(c, path, model_.config(), settings(), run_);
        model_.set_parameters(c.params.data());
        optimizer_.load_moments(c.first_moment.data(), c.second_moment.data());
        optimizer_.set_steps(c.state.optimizer_steps);
        // The schedule stays the one the run started with; --steps only moves the end.
        if (c.state.schedule_steps > 0) schedule_.total_steps = c.state.schedule_steps;
        step_ = c.state.step;
        resumed_ = restart_scaling_ = true;
        data.set_position(c.state.loader_position);
    }

    RunConfig run_;
    Parallel parallel_;
    B backend_;
    Model model_;
    typename Optimizer::template State<B> optimizer_;
    optim::WarmupCosine schedule_;
    int64_t step_ = 0;
    bool resumed_ = false, restart_scaling_ = false;  // the latter: see train_step's first line
    RunDirectory dir_;                  // rank 0, from fit() on
    CheckpointSaves<Master> saves_;     // last: its destructor waits for a write in flight
};

}  // namespace slm
