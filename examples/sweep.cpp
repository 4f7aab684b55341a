// sweep: the study's grid on the GPU at hand — presets × micro-batch × attention — with a
// memory pre-check, one JSON line per point (docs/sweep_format.md), short real-text training
// runs for the loss curves, the throughput model's predictions for GPUs and counts not at hand,
// loss per dollar, and the best configuration per model. An interrupted sweep resumes where it
// stopped: run the same command again.
//
//   sweep --out runs/sweep/sweep.jsonl --loss-data data/study --time-limit 540
//
// Data-parallel points (sweep/ranked_sweep.hpp): started as W ranks, by a launcher or --nproc,
// it measures every grid point under each --parallel policy at W GPUs, after the single-GPU run
// above has measured the calibration presets in the same file:
//
//   mpirun -np 8 -x NCCL_NVLS_ENABLE=0 sweep --parallel ddp,zero2,zero3 --out runs/sweep/sweep.jsonl
//   sweep --nproc 8 --parallel ddp,zero2,zero3 --out runs/sweep/sweep.jsonl
//
// Exit status: 0 complete; 3 stopped at --time-limit with points left (run again to resume);
// 2 usage error; 1 any other error.
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <string>
#include <vector>

#include "cli.hpp"
#include "launch_local.hpp"
#include "slm/cost/catalog_json.hpp"
#include "slm/data/find_shards.hpp"
#include "slm/names.hpp"
#include "slm/parallel/transport/launch.hpp"
#include "slm/slm.hpp"
#include "sweep/device.hpp"
#include "sweep/flags.hpp"
#include "slm/study/loss_curve_run.hpp"
#include "slm/study/measure.hpp"
#include "slm/study/predict.hpp"
#include "slm/study/ranked_sweep.hpp"
#include "sweep/start_ranks.hpp"
#include "slm/study/summary.hpp"
#include "slm/study/law_cost.hpp"

namespace {

template <class List>
bool contains(const List& list, std::string_view name) {
    return std::find(list.begin(), list.end(), name) != list.end();
}

}  // namespace

int main(int argc, char** argv) {
    auto flags = sweep::make_flags();
    int rank = 0, world = 1;  // for messages: only rank 0 prints the usage
    try {
        if (!flags.parse(argc, argv)) return 0;
        const slm::parallel::LaunchInfo launch = slm::parallel::from_environment();
        rank = launch.rank;
        world = launch.world_size;
        const std::string device_flag = flags.choice("--device", {"auto", "cpu", "cuda"});
        const auto policies = sweep::split_list(flags.text("--parallel"));
        for (const auto& p : policies)
            if (!contains(slm::names::parallel_names(), p))
                throw slm::cli::UsageError("--parallel: '" + p + "' is not one of " +
                                           slm::names::joined(slm::names::parallel_names(), ", "));
        if (policies.empty()) throw slm::cli::UsageError("--parallel is empty; give e.g. ddp,zero2,zero3");
        const bool run_single = contains(policies, slm::parallel::Single::name);
        const int nproc = static_cast<int>(flags.integer("--nproc", 1));
        if (flags.given("--nproc") && (launch.launcher != slm::parallel::Launcher::none || !launch.alone()))
            throw slm::cli::UsageError("--nproc starts its own ranks, but this process is already rank " +
                                       std::to_string(launch.rank) + " of " + std::to_string(launch.world_size) +
                                       " started by " + std::string(slm::parallel::launcher_name(launch.launcher)) +
                                       ": drop --nproc, or start sweep --nproc N once, without a launcher");
        const bool derive_only = flags.on("--derive-only");
        if (derive_only && (nproc > 1 || world > 1))
            throw slm::cli::UsageError("--derive-only measures nothing: run it as one process, without --nproc or a launcher");
        if (nproc > 1) {  // this process starts the ranks and waits for them
            const auto args = slm::cli::arguments_without(argc, argv, "--nproc");
            const std::string self = slm::cli::this_program(argv[0]);
            if (device_flag == "cpu" || !slm::cli::gpu_present())
                slm::cli::exec_under_mpirun(self, args, nproc, "sweep --nproc");
            return slm::cli::run_local_ranks(self, args, nproc, "sweep --nproc");
        }
        const auto catalog = slm::cost::load_catalog(flags.text("--catalog"));
        sweep::Target target = sweep::pick_target(device_flag, catalog, flags.text("--gpu"), launch.local_rank);
        // Deriving only, the grid is the GPU study's unless told otherwise, wherever this runs.
        const bool gpu = target.on_gpu || derive_only;
        auto list_or = [&](const char* flag, const char* gpu_default, const char* cpu_default) {
            return sweep::split_list(flags.given(flag) ? flags.text(flag) : gpu ? gpu_default : cpu_default);
        };
        const auto presets = list_or("--presets", "llama_100m,llama_500m,llama_1b,llama_2b,paper_100m,paper_500m,paper_1b,paper_2b", "tiny");
        for (const auto& p : presets) {
            try {
                slm::presets::by_name(p);
            } catch (const slm::Error& e) {
                throw slm::cli::UsageError(std::string("--presets: ") + e.what());
            }
        }
        // On a CPU nothing is predicted for other presets: the model calibrates on all of them.
        const auto calibrate_on = flags.given("--calibrate-on") ? sweep::split_list(flags.text("--calibrate-on"))
                                  : gpu ? sweep::split_list("llama_100m,llama_1b,paper_100m,paper_500m")
                                        : presets;
        auto integers = [](const std::string& flag, const std::string& text) {
            try {
                return sweep::integer_list(flag, text);
            } catch (const slm::Error& e) {
                throw slm::cli::UsageError(e.what());
            }
        };
        const auto micro_batches = integers(
            "--micro-batches", flags.given("--micro-batches") ? flags.text("--micro-batches") : gpu ? "4,8,16,32,64" : "1,2");
        const auto attentions = sweep::split_list(flags.text("--attention"));
        for (const auto& a : attentions)
            if (!contains(sweep::Attention::names(), a))
                throw slm::cli::UsageError("--attention: '" + a + "' is not one of " +
                                           slm::names::joined(sweep::Attention::names(), ", "));
        const auto precisions = sweep::split_list(flags.text("--precision"));
        for (const auto& p : precisions)
            if (!contains(slm::names::precision_names(), p))
                throw slm::cli::UsageError("--precision: '" + p + "' is not one of " +
                                           slm::names::joined(slm::names::precision_names(), ", "));
        if (precisions.empty()) throw slm::cli::UsageError("--precision is empty; give e.g. bf16,fp8");
        const int64_t given_seq = flags.given("--seq") ? flags.integer("--seq", 1) : 0;
        const auto seq_of = [&](const std::string& preset) -> int64_t {
            return given_seq > 0 ? given_seq : gpu ? slm::presets::by_name(preset).max_seq : 128;
        };
        sweep::Timing timing;
        timing.steps = static_cast<int>(flags.integer("--steps", 1));
        timing.repeats = static_cast<int>(flags.integer("--repeats", 1));
        timing.warmup = static_cast<int>(flags.integer("--warmup", 0));
        const double time_limit = flags.real("--time-limit", 0);
        const auto counts = integers("--predict-counts", flags.text("--predict-counts"));

        sweep::LawCostOptions law;
        const std::string law_name = flags.text("--scaling-law");
        if (law_name.ends_with(".json")) {
            law.law = slm::cost::read_scaling_law(law_name);  // a bad file: exit 1, naming it
        } else {
            try {
                law.law = slm::cost::scaling_law_by_name(law_name);
            } catch (const slm::Error& e) {
                throw slm::cli::UsageError(std::string("--scaling-law: ") + e.what());
            }
        }
        law.tokens_per_parameter = flags.real("--tokens-per-parameter", 0, true);
        law.budgets.clear();
        for (const auto& b : sweep::split_list(flags.text("--budgets"))) {
            char* end = nullptr;
            const double dollars = std::strtod(b.c_str(), &end);
            if (end == b.c_str() || *end != '\0' || !(dollars > 0) || !std::isfinite(dollars))
                throw slm::cli::UsageError("--budgets: '" + b + "' is not a positive number of dollars");
            law.budgets.push_back(dollars);
        }
        const auto grid = sweep::with_precisions(
            sweep::grid_points(presets, calibrate_on, attentions, micro_batches, seq_of), precisions);
        const auto ranked = sweep::ranked_points(grid, policies);
        const auto& device = target.device;
        using clock = std::chrono::steady_clock;
        const auto start = clock::now();
        auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };
        auto over_limit = [&](double next_seconds) {
            return time_limit > 0 && elapsed() + next_seconds > time_limit;
        };
        sweep::Predictor predictor_base{{}, target.estimate, target.precision};
        // The ranks agree over MPI or the TCP rendezvous, once sure they were given the same flags.
        sweep::Ranks ranks;
        if (world > 1) {
            slm::parallel::ConfigSummary config;
            std::string arguments;
            for (int i = 1; i < argc; ++i) arguments += std::string(i > 1 ? " " : "") + argv[i];
            config.add("arguments", arguments);
            ranks = sweep::start_ranks(launch, target.on_gpu, config);
        }
        if (!ranks.lead()) {  // rank 0 alone reads and writes the file and reports
            sweep::RankedSweep s{target, ranks, nullptr, catalog, predictor_base, calibrate_on, grid, timing, over_limit};
            sweep::run_ranked_points(s, ranked);
            return 0;
        }

        sweep::Records records(flags.text("--out"));
        // Its settings beside its output (sweep.config.toml): --config repeats or resumes the sweep.
        flags.write_config(std::filesystem::path(records.file()).replace_extension(".config.toml"));
        if (derive_only)
            std::printf("sweep --derive-only: recomputing predictions, costs and best lines in %s\n",
                        records.file().c_str());
        else if (!run_single) {
            // run_ranked_points says what it measures
        } else if (world > 1)
            std::printf("note: --parallel single measures one process alone, so it is skipped at %d ranks "
                        "(run sweep without a launcher for it)\n", world);
        else
            std::printf("sweep on %s (%s): %zu grid points, %zu already in %s\n", device.gpu.c_str(),
                    device.device_name.c_str(), grid.size(),
                    static_cast<size_t>(std::count_if(grid.begin(), grid.end(), [&](const sweep::Point& p) {
                        return records.has_measurement(sweep::key(device.gpu, 1, p));
                    })),
                    records.file().c_str());
        std::fflush(stdout);

        if (derive_only && !target.on_gpu)
            slm::require(sweep::use_gpu_estimates(predictor_base),
                         "--derive-only without a GPU needs the CUDA build of sweep (its memory "
                         "predictions use the GPU backend's precision and attention footprints)");
        bool stopped = false;
        int done = 0, todo = 0;
        const bool alone = run_single && world == 1;  // the single-GPU grid below
        for (const auto& p : grid) todo += alone && !records.has_measurement(sweep::key(device.gpu, 1, p));
        double point_seconds = gpu ? 20 : 10;  // a guess until the first point is timed
        for (const auto& p : grid) {
            const std::string k = sweep::key(device.gpu, 1, p);
            if (derive_only || !alone || records.has_measurement(k)) continue;
            const bool calibration = std::find(calibrate_on.begin(), calibrate_on.end(), p.preset) != calibrate_on.end();
            if (!calibration && sweep::in_catalog(catalog, device.gpu)) {
                // Before the first non-calibration point: freeze the model's predictions for the rest.
                const auto points = sweep::calibration_points(records, calibrate_on, catalog);
                if (!points.empty()) {
                    sweep::Predictor pr = predictor_base;
                    pr.model = slm::cost::ThroughputModel::calibrate(points);
                    for (auto& l : sweep::predictions_before_measurement(
                             pr, records, slm::cost::find_by_name(catalog, device.gpu), device.gpu, grid))
                        records.append(std::move(l));
                }
            }
            if (over_limit(point_seconds)) {
                stopped = true;
                break;
            }
            const auto t0 = clock::now();
            sweep::Json line = target.measure(p, timing);
            point_seconds = std::max(point_seconds * 0.5, std::chrono::duration<double>(clock::now() - t0).count() * 1.5);
            ++done;
            const double eta = (todo - done) * (elapsed() / done);
            const std::string what = p.attention + (p.precision == slm::precision::Bf16::name ? "" : " " + p.precision);
            if (line.at("kind") == "measured")
                std::printf("[%d/%d] %s %s mb %lld: %.0f tokens/s%s, %.2f GiB  (elapsed %s, ETA %s)\n", done, todo,
                            p.preset.c_str(), what.c_str(), static_cast<long long>(p.micro_batch),
                            line.at("tokens_per_s").get<double>(),
                            line.contains("mfu_pct") ? (", " + std::to_string(line.at("mfu_pct").get<double>()).substr(0, 4) + "% MFU").c_str() : "",
                            line.value("memory_gib", line.at("estimate_gib").get<double>()),
                            sweep::duration_text(elapsed()).c_str(), sweep::duration_text(eta).c_str());
            else
                std::printf("[%d/%d] %s %s mb %lld: skipped, %s (estimate %.2f GiB)  (elapsed %s, ETA %s)\n", done,
                            todo, p.preset.c_str(), what.c_str(), static_cast<long long>(p.micro_batch),
                            line.at("reason").get<std::string>().substr(0, 60).c_str(),
                            line.at("estimate_gib").get<double>(), sweep::duration_text(elapsed()).c_str(),
                            sweep::duration_text(eta).c_str());
            std::fflush(stdout);
            records.append(std::move(line));
        }

        if (!stopped && !derive_only && !ranked.empty()) {  // every rank is here (sweep/ranked_sweep.hpp)
            sweep::RankedSweep s{target, ranks, &records, catalog, predictor_base, calibrate_on, grid, timing, over_limit};
            stopped = sweep::run_ranked_points(s, ranked);
        }

        if (world > 1 && !flags.text("--loss-data").empty())
            std::printf("note: loss curves run on one process: the sweep without a launcher makes them\n");
        if (!stopped && !derive_only && world == 1 && !flags.text("--loss-data").empty()) {
            const auto shards = slm::data::find_shards(flags.text("--loss-data"));
            const double seconds = flags.given("--loss-seconds") ? flags.real("--loss-seconds", 0, true) : gpu ? 60 : 20;
            std::vector<std::pair<int64_t, std::string>> curves;  // smallest global batch first
            const std::string batches = flags.given("--loss-global-batch") ? flags.text("--loss-global-batch")
                                        : gpu                                ? "16,64"
                                                                             : "16";
            for (const int64_t global : integers("--loss-global-batch", batches))
                for (const auto& preset : presets) curves.emplace_back(global, preset);
            for (const auto& [global, preset] : curves) {
                const int64_t seq = seq_of(preset);
                const std::string k = preset + "/" + std::to_string(global) + "/" + std::to_string(seq);
                if (records.has("loss_curve", k)) continue;
                if (over_limit(seconds * 1.5 + 15)) {
                    stopped = true;
                    break;
                }
                sweep::LossRun run{preset, std::string(slm::attention::Flash::name), global, 1, seq};
                run.seed = static_cast<uint64_t>(flags.integer("--seed", 0));
                const double rate = sweep::fastest_measured(records, device.gpu, run);
                run.steps = std::max<int64_t>(10, static_cast<int64_t>(seconds * rate / static_cast<double>(global * seq)));
                std::printf("loss curve %s: %s attention, global batch %lld (micro-batch %lld), %lld steps\n",
                            preset.c_str(), run.attention.c_str(),
                            static_cast<long long>(global), static_cast<long long>(run.micro_batch),
                            static_cast<long long>(run.steps));
                std::fflush(stdout);
                auto line = target.loss_curve(run, shards, records.file().parent_path() / "loss_runs");
                const auto fit = slm::cost::fit_loss_curve(sweep::curve_points(line));
                line["fit"] = sweep::Json{{"form", "E + A * tokens^-alpha"}, {"E", fit.E}, {"A", fit.A},
                                          {"alpha", fit.alpha}, {"rms_relative_error", fit.rms_relative_error}};
                records.append(std::move(line));
            }
        }

        // Derived lines, recomputed from everything measured so far.
        std::vector<sweep::Json> derived, checks;
        const auto points = sweep::calibration_points(records, calibrate_on, catalog);
        if (!points.empty()) {
            sweep::Predictor pr = predictor_base;
            pr.model = slm::cost::ThroughputModel::calibrate(points);
            // A kernel with no variant for a shape (skipped "unsupported" here) has none on any GPU.
            const auto unsupported = sweep::unsupported_kernels(records);
            for (auto& l : sweep::predictions_everywhere(pr, catalog, counts, grid))
                if (!unsupported.contains({l.at("preset"), l.at("attention")})) derived.push_back(std::move(l));
            checks = sweep::out_of_sample_checks(pr, records, catalog);  // not rated: checks only
        }
        std::vector<sweep::Json> rated;
        for (const auto& l : records.lines())
            if (l.value("kind", "") == "measured") rated.push_back(l);
        for (const auto& l : derived) rated.push_back(l);
        const auto curves = sweep::fitted_curves(records);
        sweep::Budget budget = sweep::default_budget(curves, rated);
        if (flags.real("--budget-dollars", 0) > 0) budget.dollars = flags.real("--budget-dollars");
        if (flags.real("--target-loss", 0) > 0) budget.target_loss = flags.real("--target-loss");
        std::vector<sweep::Json> losses;
        for (const auto& r : rated) {
            if (!r.contains("tokens_per_dollar") || !r.value("fits", true)) continue;
            if (const auto* c = sweep::curve_for(curves, r.at("preset"), r.at("global_batch").get<int64_t>()))
                losses.push_back(sweep::loss_per_dollar(r, *c, budget));
        }
        auto best = sweep::best_lines(rated, losses);
        std::vector<sweep::Json> law_lines;
        for (const auto& r : rated)
            if (r.contains("tokens_per_dollar") && r.value("fits", true) && !r.value("before_measurement", false))
                law_lines.push_back(sweep::law_cost(r, slm::presets::by_name(r.at("preset").get<std::string>()), law));
        for (auto& l : sweep::best_by_law(law_lines)) best.push_back(std::move(l));
        for (auto& l : losses) derived.push_back(std::move(l));
        for (auto& l : law_lines) derived.push_back(std::move(l));
        for (const auto& l : best) derived.push_back(l);
        for (auto& l : checks) derived.push_back(std::move(l));
        records.rewrite(std::move(derived));
        sweep::print_best(best);
        sweep::print_prediction_check(records);
        if (stopped) {
            std::printf("\nstopped at the time limit (%s): run the same command again to resume\n",
                        sweep::duration_text(time_limit).c_str());
            return 3;
        }
        std::printf("\nsweep complete: %s (tools/report turns it into tables and plots)\n", records.file().c_str());
        return 0;
    } catch (const slm::cli::UsageError& e) {
        if (rank == 0) std::fprintf(stderr, "sweep: %s\n\n%s", e.what(), flags.usage().c_str());
        return 2;
    } catch (const sweep::RankZeroFailed&) {
        return 1;  // rank 0 printed why
    } catch (const std::exception& e) {  // slm::Error, and what the standard library throws
        if (world > 1) std::fprintf(stderr, "sweep: rank %d: error: %s\n", rank, e.what());
        else std::fprintf(stderr, "sweep: error: %s\n", e.what());
        std::fflush(stderr);
        slm::cli::end_every_rank_at_exit();
        return 1;
    }
}
